"""BPETokenizer: train, encode, decode, special tokens, chat template, save/load as ``tokenizer.json``."""

from __future__ import annotations

from collections.abc import Iterable

import regex

from .bpe_model import BPEModel
from .bytes_map import decode_table
from .chat_template import CHATML_TEMPLATE, render_chat
from .errors import TokenizerInputError
from .hf_json import TokenizerSpec, post_processor_ids
from .normalize import make_normalizer
from .pretokenize import PreTokenizer, resolve_pattern
from .roles import DEFAULT_SPECIAL_TOKENS, ROLE_DEFAULT, RoleIds, resolve_roles
from .special_tokens import AddedToken, AddedVocabulary, AllowedSpecial
from .tokenizer_files import NOT_TRAINED, TokenizerFiles
from .trainer import count_words, learn_merges

__all__ = ["DEFAULT_SPECIAL_TOKENS", "BPETokenizer"]


class BPETokenizer(RoleIds, TokenizerFiles):
    """Byte-level BPE with a GPT-2/GPT-4 style regex pre-split, encoding exactly as HF ``tokenizers``.

    Usage::

        tok = BPETokenizer(vocab_size=8192)      # specials <|endoftext|> <|im_start|> <|im_end|> <pad> <mask>
        tok.train(lines)                         # any iterable of str, streamed
        ids = tok.encode("Hello world")
        tok.save("out/")                         # tokenizer.json + tokenizer_config.json
        tok.save("data/tok.json")                # data/tok.json + data/tok_config.json (the roles)
        tok = BPETokenizer.load("out/")          # also any HF byte-level BPE tokenizer.json / folder

    ``vocab_size`` is the number of tokens, bytes, merges and special tokens together (HF's count); before
    training it is the size asked for. ``pattern`` is ``"gpt2"``, ``"gpt4"``, ``"llama3"`` or a regex.
    The ``*_token`` roles name special tokens (None for none); their ids are ``bos_token_id`` ...
    ``mask_token_id``. Defaults (:mod:`tokenizers_bpe.roles`): bos, eos and unk ``<|endoftext|>``, pad
    ``<pad>`` (else ``<|endoftext|>``), mask ``<mask>`` (else None), each only when it is a special token.
    """

    def __init__(
        self,
        vocab_size: int = 8192,
        special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS,
        min_frequency: int = 0,
        pattern: str = "gpt4",
        bos_token: str | None = ROLE_DEFAULT,
        eos_token: str | None = ROLE_DEFAULT,
        pad_token: str | None = ROLE_DEFAULT,
        unk_token: str | None = ROLE_DEFAULT,
        mask_token: str | None = ROLE_DEFAULT,
        chat_template: str | None = None,
        show_progress: bool = True,
    ):
        self.special_tokens = list(dict.fromkeys(special_tokens))
        if not all(isinstance(token, str) and token for token in self.special_tokens):
            raise TokenizerInputError(f"special_tokens must be non-empty strings; got {self.special_tokens!r}")
        smallest = 256 + len(self.special_tokens)
        if not isinstance(vocab_size, int) or vocab_size < smallest:
            raise TokenizerInputError(
                f"vocab_size={vocab_size!r} is too small; it must be an int >= {smallest} "
                f"(256 bytes + {len(self.special_tokens)} special tokens)"
            )
        if not isinstance(min_frequency, int) or min_frequency < 0:
            raise TokenizerInputError(f"min_frequency={min_frequency!r} is invalid; expected an int >= 0")
        given = {"bos_token": bos_token, "eos_token": eos_token, "pad_token": pad_token, "unk_token": unk_token}
        roles = resolve_roles({**given, "mask_token": mask_token}, self.special_tokens)
        self.target_vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.pattern = resolve_pattern(pattern)
        self.show_progress = show_progress
        self.chat_template = chat_template or CHATML_TEMPLATE
        self._set_roles(roles)
        self.pre_tokenizer = PreTokenizer.from_pattern(self.pattern)
        self._spec: TokenizerSpec | None = None

    # ----------------------------------------------------------------------------------------- training
    def train(self, texts: Iterable[str] | str, show_progress: bool | None = None) -> BPETokenizer:
        """Learn merges from ``texts`` (streamed once; only word counts are kept). Returns ``self``.

        Special-token text inside the corpus is cut out and never learnt from.
        """
        progress = self.show_progress if show_progress is None else show_progress
        texts = [texts] if isinstance(texts, str) else texts
        specials = sorted(self.special_tokens, key=len, reverse=True)
        cutter = regex.compile("|".join(regex.escape(t) for t in specials)) if specials else None
        pre_tokenizer = self.pre_tokenizer

        def split(text: str) -> list[str]:
            if cutter is None or cutter.search(text) is None:
                return pre_tokenizer(text)
            return [piece for part in cutter.split(text) for piece in pre_tokenizer(part)]

        counts = count_words(texts, split, show_progress=progress)
        if not counts:
            raise TokenizerInputError(
                "the training corpus holds no text (0 words after pre-splitting); pass non-empty strings"
            )
        id_to_token, merges = learn_merges(
            counts, self.target_vocab_size, self.special_tokens, self.min_frequency, show_progress=progress
        )
        self._install(
            TokenizerSpec(
                vocab={token: index for index, token in enumerate(id_to_token)},
                merges=merges,
                added_tokens=[AddedToken(index, token) for index, token in enumerate(self.special_tokens)],
                pre_tokenizer=self.pre_tokenizer.steps,
            )
        )
        return self

    def _install(self, spec: TokenizerSpec) -> None:
        """Build the runtime tables (model, added tokens, id -> bytes) from a spec."""
        self._spec = spec
        self._model = BPEModel(spec.vocab, spec.merges, spec.ignore_merges)
        self._added = AddedVocabulary(spec.added_tokens)
        self._all_specials = self._added.special_contents
        self._normalize = make_normalizer(spec.normalizer)
        self.pre_tokenizer = PreTokenizer(spec.pre_tokenizer)
        self._token_to_id = dict(spec.vocab)
        self._token_to_id.update({token.content: token.id for token in spec.added_tokens})
        size = max(self._token_to_id.values(), default=-1) + 1
        self._id_to_token: list[str | None] = [None] * size
        for token, index in self._token_to_id.items():
            if index < 0:
                raise TokenizerInputError(f"token {token!r} has id {index}; ids must be >= 0")
            self._id_to_token[index] = token
        self._id_bytes = decode_table(self._id_to_token)
        self._special_ids = {token.id for token in spec.added_tokens if token.special}
        self._prefix, self._suffix = post_processor_ids(spec.post_processor, self._token_to_id)
        self._wraps = bool(self._prefix or self._suffix)

    # ----------------------------------------------------------------------------------------- encoding
    def encode(
        self, text: str, add_special_tokens: bool = True, allowed_special: AllowedSpecial = "all"
    ) -> list[int]:
        """Token ids of ``text``, equal to HF ``tokenizers``' ``encode(text).ids`` for the same file.

        Special-token text in ``text`` becomes the special token when ``allowed_special`` allows it ("all",
        the default, as HF; "none"; or a set of token strings); otherwise it is encoded as plain text.
        ``add_special_tokens`` adds what the post-processor adds (nothing for our own tokenizers).
        """
        if self._spec is None:
            raise TokenizerInputError(NOT_TRAINED)
        if not isinstance(text, str):
            raise TokenizerInputError(f"encode expects a str; got {type(text).__name__}")
        if allowed_special == "all":
            if not self._added.may_match(text):  # the common case: no added token can occur
                ids = self._encode_ordinary(text)
                return self._prefix + ids + self._suffix if add_special_tokens and self._wraps else ids
            allowed = self._all_specials
        else:
            allowed = self._added.resolve_allowed(allowed_special)
        ids = []
        for segment, token_id in self._added.split(text, allowed):
            if token_id is None:
                ids += self._encode_ordinary(segment)
            else:
                ids.append(token_id)
        return self._prefix + ids + self._suffix if add_special_tokens and self._wraps else ids

    def _encode_ordinary(self, text: str) -> list[int]:
        if self._normalize is not None:
            text = self._normalize(text)
        cached = self._model.cache.get
        encode_word = self._model.encode_word
        ids: list[int] = []
        for piece in self.pre_tokenizer(text):
            ids += cached(piece) or encode_word(piece)
        return ids

    def encode_batch(
        self, texts: Iterable[str], add_special_tokens: bool = True, allowed_special: AllowedSpecial = "all"
    ) -> list[list[int]]:
        """:meth:`encode` for each text."""
        return [self.encode(text, add_special_tokens, allowed_special) for text in texts]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; bytes that do not form valid UTF-8 become U+FFFD, as in HF."""
        if self._spec is None:
            raise TokenizerInputError(NOT_TRAINED)
        table = self._id_bytes
        ids = list(ids)
        if skip_special_tokens:
            ids = [index for index in ids if index not in self._special_ids]
        try:
            parts = [table[index] if index >= 0 else None for index in ids]
        except (IndexError, TypeError):
            parts = [None]
        if None in parts:
            bad = next(
                i for i in ids if not isinstance(i, int) or not 0 <= i < len(table) or table[i] is None
            )
            raise TokenizerInputError(
                f"cannot decode id {bad!r}: valid ids are the ints 0..{len(table) - 1} of the vocabulary"
            )
        return b"".join(parts).decode("utf-8", errors="replace")

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> list[str]:
        """:meth:`decode` for each id sequence."""
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    # ----------------------------------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        """Number of tokens (bytes, merges, added tokens; HF's ``get_vocab_size()``); before training, the target."""
        return len(self._token_to_id) if self._spec is not None else self.target_vocab_size

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        """Id of a token (byte-level string or added token), None when absent."""
        return self._token_to_id.get(token) if self._spec is not None else None

    def id_to_token(self, index: int) -> str | None:
        """Token string of an id, None when absent."""
        if self._spec is None or not isinstance(index, int) or not 0 <= index < len(self._id_to_token):
            return None
        return self._id_to_token[index]

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, added tokens included."""
        return dict(self._token_to_id) if self._spec is not None else {}

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` (byte-level form)."""
        return [self._id_to_token[index] for index in self.encode(text, add_special_tokens=False)]

    def _set_roles(self, roles: dict[str, str | None]) -> None:
        for role, token in roles.items():
            setattr(self, role, token)

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of the special added tokens."""
        return sorted(self._special_ids) if self._spec is not None else []

    # ----------------------------------------------------------------------------------------- chat
    def apply_chat_template(
        self,
        messages: list[dict],
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        **kwargs: object,
    ) -> str | list[int]:
        """Render ``messages`` with the chat template (ChatML unless the loaded folder has its own).

        With ``tokenize=True`` returns the ids of the rendered text (no post-processor ids, as transformers).
        """
        text = render_chat(self.chat_template, messages, add_generation_prompt, self.special_tokens_map(), **kwargs)
        return self.encode(text, add_special_tokens=False) if tokenize else text

    def __repr__(self) -> str:
        state = (
            f"vocab_size={self.vocab_size}" if self._spec else f"untrained, target {self.target_vocab_size}"
        )
        return f"BPETokenizer({state}, special_tokens={self.special_tokens})"
