"""Special-token roles: which special token is the bos, eos, pad, unk and mask token, and their defaults.

A role names one of the tokenizer's special tokens, or None. The defaults (in the constructor, and for a
``tokenizer.json`` loaded without a config) make ``BPETokenizer(vocab_size=...)`` ready for causal and masked LM:

========== ===================================================================
role       default
========== ===================================================================
bos_token  ``<|endoftext|>`` when it is a special token (GPT-2's choice), else None
eos_token  the same
unk_token  the same
pad_token  ``<pad>`` when it is a special token, else ``<|endoftext|>`` when it is one, else None
mask_token ``<mask>`` when it is a special token, else None
========== ===================================================================

Roles are saved in ``tokenizer_config.json`` under transformers' keys (``bos_token`` ... ``mask_token``), so
transformers sees the same tokens in each role.
"""

from __future__ import annotations

from collections.abc import Collection

from .errors import TokenizerInputError
from .storage import token_text

ENDOFTEXT = "<|endoftext|>"
PAD = "<pad>"
MASK = "<mask>"
#: The default special tokens, in id order: ``<|endoftext|>`` 0, ``<|im_start|>`` 1, ``<|im_end|>`` 2 (ChatML),
#: ``<pad>`` 3, ``<mask>`` 4.
DEFAULT_SPECIAL_TOKENS = (ENDOFTEXT, "<|im_start|>", "<|im_end|>", PAD, MASK)
ROLES = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token")
_CANDIDATES = {
    "bos_token": (ENDOFTEXT,),
    "eos_token": (ENDOFTEXT,),
    "pad_token": (PAD, ENDOFTEXT),
    "unk_token": (ENDOFTEXT,),
    "mask_token": (MASK,),
}


class RoleDefault(str):
    """The type of :data:`ROLE_DEFAULT`: "use the role's default" (a plain string is always a token name)."""


ROLE_DEFAULT = RoleDefault("<default>")


def default_role(role: str, special_tokens: Collection[str]) -> str | None:
    """The default token of ``role`` among ``special_tokens`` (see the module table).

    Example:
        >>> default_role("pad_token", ["<|endoftext|>"]), default_role("pad_token", ["<|endoftext|>", "<pad>"])
        ('<|endoftext|>', '<pad>')
        >>> default_role("mask_token", ["<|endoftext|>"]) is None
        True
    """
    return next((token for token in _CANDIDATES[role] if token in special_tokens), None)


def resolve_roles(given: dict[str, str | None], special_tokens: Collection[str]) -> dict[str, str | None]:
    """The constructor's roles: :data:`ROLE_DEFAULT` replaced by the default; every token must be special."""
    roles: dict[str, str | None] = {}
    for role in ROLES:
        token = given.get(role, ROLE_DEFAULT)
        if isinstance(token, RoleDefault):
            token = default_role(role, special_tokens)
        if token is not None and token not in special_tokens:
            raise TokenizerInputError(f"{role}={token!r} is not one of special_tokens {list(special_tokens)}")
        roles[role] = token
    return roles


def roles_from_config(
    config: dict | None, special_tokens: Collection[str], vocab: Collection[str]
) -> dict[str, str | None]:
    """The roles of a loaded tokenizer.

    Without a config (a bare ``tokenizer.json``) every role takes its default among ``special_tokens``. With one,
    a role is what the config names (a string or an AddedToken dict) when that token is in ``vocab``, else None;
    a config without a ``mask_token`` key (ours, written before that role existed) gets the mask default.

    Example:
        >>> roles_from_config({"eos_token": "</s>", "pad_token": None}, ["</s>", "<mask>"], ["</s>", "<mask>"])
        {'bos_token': None, 'eos_token': '</s>', 'pad_token': None, 'unk_token': None, 'mask_token': '<mask>'}
    """
    if config is None:
        return {role: default_role(role, special_tokens) for role in ROLES}
    roles: dict[str, str | None] = {}
    for role in ROLES:
        if role not in config and role == "mask_token":
            token = default_role(role, special_tokens)
        else:
            token = token_text(config.get(role))
        roles[role] = token if token in vocab else None
    return roles


class RoleIds:
    """The id of each role (``bos_token_id`` ... ``mask_token_id``) for a class with ``token_to_id`` and roles."""

    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    unk_token: str | None
    mask_token: str | None

    def token_to_id(self, token: str) -> int | None:  # pragma: no cover - provided by the tokenizer
        raise NotImplementedError

    def _role_id(self, token: str | None) -> int | None:
        return self.token_to_id(token) if token else None

    @property
    def bos_token_id(self) -> int | None:
        """Id of ``bos_token`` (None when the role is unset or before training)."""
        return self._role_id(self.bos_token)

    @property
    def eos_token_id(self) -> int | None:
        """Id of ``eos_token`` (None when the role is unset or before training)."""
        return self._role_id(self.eos_token)

    @property
    def pad_token_id(self) -> int | None:
        """Id of ``pad_token`` (None when the role is unset or before training)."""
        return self._role_id(self.pad_token)

    @property
    def unk_token_id(self) -> int | None:
        """Id of ``unk_token`` (None when the role is unset or before training)."""
        return self._role_id(self.unk_token)

    @property
    def mask_token_id(self) -> int | None:
        """Id of ``mask_token`` (None when the role is unset or before training)."""
        return self._role_id(self.mask_token)

    def special_tokens_map(self) -> dict[str, str]:
        """Role -> token for every role that is set (the chat template's variables, as in transformers)."""
        return {role: getattr(self, role) for role in ROLES if getattr(self, role) is not None}

    def roles_config(self) -> dict[str, str | None]:
        """Role -> token (None included) for ``tokenizer_config.json``."""
        return {role: getattr(self, role) for role in ROLES}
