"""``tokenizer.json`` I/O: a byte-level BPE described as plain data (:class:`TokenizerSpec`) and back.

Reads ours and HF's byte-level BPE files (GPT-2, SmolLM2, Llama-3: a ``ByteLevel`` pre-tokenizer, alone or
after ``Split``/``Digits`` steps in a ``Sequence``). Anything else (WordPiece, Unigram, byte fallback,
Metaspace) is refused with :class:`~tokenizers_bpe.errors.UnsupportedTokenizerError` naming what was found
(transformers may still open it); a broken file (no ``model``, malformed vocab or merges) with the plain
:class:`~tokenizers_bpe.errors.TokenizerInputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import TokenizerInputError, UnsupportedTokenizerError
from .special_tokens import AddedToken

BYTE_LEVEL_DECODER = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}


@dataclass
class TokenizerSpec:
    """Everything a byte-level BPE ``tokenizer.json`` says, in the form our classes use.

    ``pre_tokenizer`` holds step dicts for :class:`~tokenizers_bpe.pretokenize.PreTokenizer` (a Split's
    pattern is a plain regex string). ``normalizer``, ``post_processor`` and ``decoder`` stay as in the file.
    """

    vocab: dict[str, int]
    merges: list[tuple[str, str]]
    added_tokens: list[AddedToken] = field(default_factory=list)
    pre_tokenizer: list[dict] = field(default_factory=list)
    normalizer: dict | None = None
    post_processor: dict | None = None
    decoder: dict | None = field(default_factory=lambda: dict(BYTE_LEVEL_DECODER))
    ignore_merges: bool = False


def _fail(what: str, seen: object, valid: str) -> TokenizerInputError:
    """A broken file: what is wrong, the value seen, what would be valid."""
    return TokenizerInputError(f"tokenizer.json {what} is {seen!r}; expected {valid}")


def _unsupported(what: str, seen: object, valid: str) -> UnsupportedTokenizerError:
    """A well-formed file of a kind we do not run (transformers may)."""
    return UnsupportedTokenizerError(f"tokenizer.json {what} is {seen!r}; expected {valid}")


def _steps_from_json(spec: dict | None) -> list[dict]:
    if spec is None:
        return []
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "Sequence":
        return [step for inner in spec.get("pretokenizers", []) for step in _steps_from_json(inner)]
    if kind == "ByteLevel":
        return [
            {
                "type": "ByteLevel",
                "add_prefix_space": bool(spec.get("add_prefix_space", False)),
                "use_regex": bool(spec.get("use_regex", True)),
            }
        ]
    if kind == "Digits":
        return [{"type": "Digits", "individual_digits": bool(spec.get("individual_digits", False))}]
    if kind == "Split":
        pattern = spec.get("pattern") or {}
        if spec.get("invert"):
            raise _unsupported("Split 'invert'", True, "false (inverted splits are not supported)")
        if "Regex" in pattern:
            regex_text = pattern["Regex"]
        elif "String" in pattern:
            import regex

            regex_text = regex.escape(pattern["String"])
        else:
            raise _fail("Split pattern", pattern, "{'Regex': ...} or {'String': ...}")
        return [{"type": "Split", "pattern": regex_text, "behavior": spec.get("behavior", "Isolated")}]
    raise _unsupported("pre_tokenizer", kind or spec, "ByteLevel, Split, Digits or a Sequence of them")


def _steps_to_json(steps: list[dict]) -> dict | None:
    out = []
    for step in steps:
        if step["type"] == "Split":
            out.append(
                {
                    "type": "Split",
                    "pattern": {"Regex": step["pattern"]},
                    "behavior": step.get("behavior", "Isolated"),
                    "invert": False,
                }
            )
        elif step["type"] == "ByteLevel":
            out.append(
                {
                    "type": "ByteLevel",
                    "add_prefix_space": step["add_prefix_space"],
                    "trim_offsets": True,
                    "use_regex": step["use_regex"],
                }
            )
        else:
            out.append(dict(step))
    if not out:
        return None
    return out[0] if len(out) == 1 else {"type": "Sequence", "pretokenizers": out}


def _has_byte_level(spec: dict | None, key: str) -> bool:
    if not isinstance(spec, dict):
        return False
    if spec.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(inner, key) for inner in spec.get(key, []) or [])


def spec_from_json(data: object) -> TokenizerSpec:
    """Read a parsed ``tokenizer.json``; raise ValueError when it is not a byte-level BPE we can run."""
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise _fail(
            "top level",
            type(data).__name__ if not isinstance(data, dict) else sorted(data),
            "an object with a 'model' entry",
        )
    model = data["model"]
    if model.get("type", "BPE") != "BPE":
        raise _unsupported("model type", model.get("type"), "'BPE' with 'vocab' and 'merges'")
    if "vocab" not in model or "merges" not in model:
        raise _fail("model", sorted(model), "'BPE' with 'vocab' and 'merges'")
    if model.get("byte_fallback"):
        raise _unsupported("model byte_fallback", True, "false (byte fallback is for SentencePiece-style BPE)")
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise _unsupported(f"model {key}", model[key], "null or '' for a byte-level BPE")
    vocab = model["vocab"]
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise _fail("model vocab", type(vocab).__name__, "an object mapping token strings to int ids")
    merges: list[tuple[str, str]] = []
    for merge in model["merges"]:
        parts = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(parts, list) or len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise _fail("merge", merge, "'a b' or ['a', 'b']")
        merges.append((parts[0], parts[1]))
    decoder = data.get("decoder")
    if not _has_byte_level(decoder, "decoders") and not _has_byte_level(
        data.get("pre_tokenizer"), "pretokenizers"
    ):
        raise _unsupported("decoder", decoder, "ByteLevel (this reader handles byte-level BPE only)")
    return TokenizerSpec(
        vocab=dict(vocab),
        merges=merges,
        added_tokens=[AddedToken.from_dict(item) for item in data.get("added_tokens") or []],
        pre_tokenizer=_steps_from_json(data.get("pre_tokenizer")),
        normalizer=data.get("normalizer"),
        post_processor=data.get("post_processor"),
        decoder=decoder,
        ignore_merges=bool(model.get("ignore_merges", False)),
    )


def spec_to_json(spec: TokenizerSpec) -> dict:
    """The ``tokenizer.json`` content for ``spec`` (HF ``tokenizers`` reads it with ``Tokenizer.from_file``)."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [token.to_dict() for token in sorted(spec.added_tokens, key=lambda t: t.id)],
        "normalizer": spec.normalizer,
        "pre_tokenizer": _steps_to_json(spec.pre_tokenizer),
        "post_processor": spec.post_processor,
        "decoder": spec.decoder,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": spec.ignore_merges,
            "vocab": spec.vocab,
            "merges": [[left, right] for left, right in spec.merges],
        },
    }


def post_processor_ids(spec: dict | None, token_ids: dict[str, int]) -> tuple[list[int], list[int]]:
    """Ids a post-processor puts before and after a single sequence (``add_special_tokens=True``).

    Example:
        >>> post_processor_ids({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}},
        ...     {"Sequence": {"id": "A"}}], "special_tokens": {"<s>": {"ids": [1]}}}, {})
        ([1], [])
    """
    if spec is None or spec.get("type") == "ByteLevel":
        return [], []
    kind = spec.get("type")
    if kind == "Sequence":
        prefix: list[int] = []
        suffix: list[int] = []
        for inner in spec.get("processors", []):
            before, after = post_processor_ids(inner, token_ids)
            prefix, suffix = before + prefix, suffix + after
        return prefix, suffix
    if kind == "TemplateProcessing":
        prefix, suffix = [], []
        seen_sequence = False
        for item in spec.get("single", []):
            if "Sequence" in item:
                seen_sequence = True
                continue
            name = item["SpecialToken"]["id"]
            ids = spec.get("special_tokens", {}).get(name, {}).get("ids")
            if ids is None:
                raise _fail("TemplateProcessing special token", name, "a name listed in 'special_tokens'")
            (suffix if seen_sequence else prefix).extend(ids)
        return prefix, suffix
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [spec["cls"][1]], [spec["sep"][1]]
    raise _unsupported(
        "post_processor", kind, "null, ByteLevel, TemplateProcessing, RobertaProcessing or a Sequence"
    )
