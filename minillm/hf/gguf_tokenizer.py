"""An HF byte-level BPE ``tokenizer.json`` as GGUF tokenizer metadata (``tokenizer.ggml.model = "gpt2"``).

What llama.cpp reads, and where it comes from:

* ``tokenizer.ggml.tokens`` / ``token_type``: one entry per embedding row (``vocab_size`` of config.json). Ids of
  ``model.vocab`` are NORMAL, special added tokens (and added tokens that look like ``<|...|>``) CONTROL, other
  added tokens USER_DEFINED, rows no token uses ``[PAD<id>]`` UNUSED, as llama.cpp's converter writes them.
* ``tokenizer.ggml.pre``: the pre-tokenizer, which llama.cpp knows by name only. It is read from the
  ``pre_tokenizer`` of ``tokenizer.json`` by :data:`PRE_TOKENIZERS` (ByteLevel alone: ``gpt-2``; Digits +
  ByteLevel, SmolLM's: ``smollm``; a Llama-3 or GPT-4 regex Split: ``llama-bpe``; Qwen2's: ``qwen2``). Anything
  else is refused: llama.cpp would split text differently from the model's own tokenizer. The GPT-4 (cl100k)
  regex our tokenizers use splits exactly as the Llama-3 one (possessive quantifiers aside, which change
  nothing there); llama.cpp's ``llama-bpe`` also prefers a whole-word vocabulary hit over the merges, which
  can differ from plain BPE on rare words.
* merges, bos/eos/unk/pad ids, ``add_bos_token`` / ``add_eos_token`` and ``tokenizer.chat_template``: from
  gguf's own :class:`gguf.SpecialVocab` (``tokenizer.json``, ``tokenizer_config.json``, ``config.json``), with
  ``chat_template.jinja`` winning over the config as in transformers 5, and ``add_bos_token`` /
  ``add_eos_token`` written as False when neither file asks for them (llama.cpp's ``llama-bpe`` would
  otherwise add a BOS the model never saw).

SentencePiece-style tokenizers (byte-fallback BPE such as Mistral's or Llama 2's, Unigram, WordPiece) are refused
in one line. ``gguf`` is imported inside the functions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.errors import InputError, MissingDependencyError

logger = logging.getLogger(__name__)

GPT2_REGEX = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
GPT4_REGEX = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
              r"""|\s*[\r\n]|\s+(?!\S)|\s+""")
QWEN2_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
               r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

# The pre-tokenizer steps of tokenizer.json (see _signature) -> the name llama.cpp implements them under.
PRE_TOKENIZERS: dict[tuple[tuple[Any, ...], ...], str] = {
    (("ByteLevel", True),): "gpt-2",
    (("Digits", True), ("ByteLevel", True)): "smollm",
    (("Split", GPT2_REGEX), ("ByteLevel", False)): "gpt-2",
    (("Split", LLAMA3_REGEX), ("ByteLevel", False)): "llama-bpe",
    (("Split", GPT4_REGEX), ("ByteLevel", False)): "llama-bpe",
    (("Split", QWEN2_REGEX), ("ByteLevel", False)): "qwen2",
}
KNOWN_PRE = "ByteLevel alone, Digits + ByteLevel, or a GPT-2, Llama-3, GPT-4 or Qwen2 regex Split + ByteLevel"
TOKENIZER_FILE = "tokenizer.json"
TEMPLATE_FILE = "chat_template.jinja"
# Token types (gguf.TokenType), spelled out so reading a tokenizer needs no gguf import.
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


@dataclass
class GGUFVocab:
    """A tokenizer as GGUF metadata; :meth:`write` adds it to a ``gguf.GGUFWriter``."""

    tokens: list[str]
    token_types: list[int]
    pre: str
    special: Any  # gguf.SpecialVocab: merges, special ids, add_bos/add_eos, chat template
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chat_template(self) -> str | None:
        template = self.special.chat_template
        return template if isinstance(template, str) else None

    def token(self, kind: str) -> str | None:
        """The text of the ``kind`` ("bos", "eos" ...) special token, or None when there is none."""
        index = self.special.special_token_ids.get(kind)
        return self.tokens[index] if index is not None else None

    def write(self, writer: Any) -> None:
        """Add every tokenizer key to ``writer``."""
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.token_types)
        writer.add_add_space_prefix(False)
        self.special.add_to_gguf(writer, quiet=True)


def read_vocab(directory: str | Path, vocab_size: int) -> GGUFVocab:
    """The GGUF tokenizer of the ``tokenizer.json`` in ``directory``, padded to ``vocab_size`` rows."""
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependencyError("GGUF export needs the gguf package: pip install 'minillm[gguf]'") from exc
    directory = Path(directory)
    file = directory / TOKENIZER_FILE
    if not file.is_file():
        raise InputError(f"{directory} holds no {TOKENIZER_FILE}; a GGUF file carries its tokenizer, so pass the "
                         "folder of the model's HF tokenizer.json (tokenizer_dir)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not valid JSON ({exc}); expected an HF tokenizer.json") from None
    _check_byte_level(file, data)
    tokens, types = _tokens(file, data, vocab_size)
    special = gguf.SpecialVocab(directory, load_merges=True, n_vocab=vocab_size)
    if not special.merges:
        raise InputError(f"{file} holds no merges; a byte-level BPE tokenizer.json lists them under model.merges")
    if (directory / TEMPLATE_FILE).is_file():  # transformers 5 keeps the template there; it wins over the config
        special.chat_template = (directory / TEMPLATE_FILE).read_text(encoding="utf-8")
    for kind in ("bos", "eos"):
        special.add_special_token.setdefault(kind, False)
    return GGUFVocab(tokens, types, pre_tokenizer_name(file, data.get("pre_tokenizer")), special)


def _check_byte_level(file: Path, data: dict) -> None:
    """Refuse anything but a byte-level BPE (what llama.cpp's "gpt2" tokenizer model runs)."""
    model = data.get("model") or {}
    kind = model.get("type")
    decoder = (data.get("decoder") or {}).get("type")
    if kind != "BPE" or model.get("byte_fallback") or decoder != "ByteLevel":
        described = f"{kind} with byte fallback" if model.get("byte_fallback") else f"{kind}, decoder {decoder}"
        raise InputError(f"{file} is a {described} tokenizer; GGUF export writes byte-level BPE tokenizers "
                         "(model BPE, decoder ByteLevel) only")
    normalizer = (data.get("normalizer") or {}).get("type")
    if normalizer not in (None, "NFC"):
        logger.warning("%s: normalizer %s is not written to the GGUF file (llama.cpp does not run it)", file,
                       normalizer)


def _tokens(file: Path, data: dict, vocab_size: int) -> tuple[list[str], list[int]]:
    """Token texts and types for ids ``0 .. vocab_size-1`` (see the module docstring)."""
    by_id: dict[int, tuple[str, int]] = {index: (token, NORMAL) for token, index in data["model"]["vocab"].items()}
    for added in data.get("added_tokens") or []:
        content = added["content"]
        looks_special = content.startswith("<|") and content.endswith("|>")
        by_id[added["id"]] = (content, CONTROL if added.get("special") or looks_special else USER_DEFINED)
    largest = max(by_id, default=-1)
    if largest >= vocab_size:
        raise InputError(f"{file} has token id {largest} but the model has {vocab_size} embedding rows; use the "
                         "tokenizer the model was trained with")
    tokens, types = [], []
    for index in range(vocab_size):
        token, kind = by_id.get(index, (f"[PAD{index}]", UNUSED))
        tokens.append(token)
        types.append(kind)
    return tokens, types


def _signature(step: dict) -> tuple[Any, ...]:
    """One pre-tokenizer step as a comparable tuple: (type, what matters to the split)."""
    kind = step.get("type")
    if kind == "ByteLevel":
        return (kind, bool(step.get("use_regex", True))) + (("prefix",) if step.get("add_prefix_space") else ())
    if kind == "Digits":
        return (kind, bool(step.get("individual_digits")))
    if kind == "Split":
        pattern = step.get("pattern") or {}
        regex = pattern.get("Regex", pattern.get("String"))
        if step.get("behavior") != "Isolated" or step.get("invert"):
            return (kind, regex, step.get("behavior"), step.get("invert"))
        return (kind, regex)
    return (kind,)


def pre_tokenizer_name(file: str | Path, pre_tokenizer: dict | None) -> str:
    """The ``tokenizer.ggml.pre`` name llama.cpp splits text by as ``pre_tokenizer`` (a tokenizer.json entry) does.

    Example:
        >>> pre_tokenizer_name("t.json", {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True})
        'gpt-2'
    """
    steps = (pre_tokenizer or {}).get("pretokenizers") if (pre_tokenizer or {}).get("type") == "Sequence" else None
    steps = steps if steps is not None else [pre_tokenizer] if pre_tokenizer else []
    signature = tuple(_signature(step) for step in steps)
    name = PRE_TOKENIZERS.get(signature)
    if name is None:
        shown = " + ".join(str(part[0]) for part in signature) or "none"
        raise InputError(f"{file} splits text with a pre-tokenizer llama.cpp does not implement ({shown}); GGUF "
                         f"export knows {KNOWN_PRE}")
    return name
