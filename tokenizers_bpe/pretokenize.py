"""Pre-splitting: cut text into the pieces ("words") that BPE merges never cross.

A :class:`PreTokenizer` is a short pipeline of steps mirroring HF ``pre_tokenizers``: ``Split`` (a regex),
``Digits`` and ``ByteLevel`` (optional prefix space, optional GPT-2 regex). Each step maps a list of pieces
to a finer list. The pieces stay ordinary strings; the byte-level mapping happens in the BPE model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import regex

from .errors import TokenizerInputError

#: GPT-2's split pattern (also HF's ``ByteLevel(use_regex=True)``).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: GPT-4's (cl100k) split pattern: case-insensitive contractions, numbers in groups of up to three digits.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]"""
    r"""|\s+(?!\S)|\s+"""
)
#: Llama-3's split pattern.
LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
PATTERNS: dict[str, str] = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "llama3": LLAMA3_PATTERN}
BEHAVIORS = ("Isolated", "Removed", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def resolve_pattern(pattern: str) -> str:
    """Return the regex for a pattern name (``gpt2``, ``gpt4``, ``llama3``) or check and return a raw regex.

    Example:
        >>> resolve_pattern("gpt2") == GPT2_PATTERN
        True
    """
    if pattern in PATTERNS:
        return PATTERNS[pattern]
    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise TokenizerInputError(
            f"pattern {pattern!r} is not a valid regex ({exc}); pass one of {sorted(PATTERNS)} or a regex"
        ) from None
    return pattern


def split_pieces(text: str, compiled: regex.Pattern, behavior: str = "Isolated") -> list[str]:
    """Split ``text`` on the matches of ``compiled`` the way HF's ``Split`` pre-tokenizer does.

    Empty pieces are dropped. ``Isolated`` keeps matches and gaps as separate pieces, ``Removed`` drops
    the matches, ``MergedWithPrevious``/``MergedWithNext`` glue each match to its neighbour, ``Contiguous``
    fuses runs of adjacent matches.

    Example:
        >>> pat = regex.compile(r"\\p{N}")
        >>> split_pieces("ab12c", pat), split_pieces("ab12c", pat, "MergedWithPrevious")
        (['ab', '1', '2', 'c'], ['ab1', '2', 'c'])
    """
    parts: list[tuple[str, bool]] = []  # (piece, is_match)
    pos = 0
    for match in compiled.finditer(text):
        start, end = match.span()
        if start == end:
            continue
        if start > pos:
            parts.append((text[pos:start], False))
        parts.append((text[start:end], True))
        pos = end
    if pos < len(text):
        parts.append((text[pos:], False))
    if behavior == "Isolated":
        return [piece for piece, _ in parts]
    if behavior == "Removed":
        return [piece for piece, is_match in parts if not is_match]
    if behavior == "MergedWithNext":  # HF folds from the right: a match joins the non-match after it
        return [piece[::-1] for piece in _merge_runs([(p[::-1], m) for p, m in reversed(parts)])][::-1]
    if behavior == "MergedWithPrevious":
        return _merge_runs(parts)
    out: list[str] = []  # Contiguous: runs of adjacent matches become one piece
    previous_match = False
    for piece, is_match in parts:
        if is_match and previous_match:
            out[-1] += piece
        else:
            out.append(piece)
        previous_match = is_match
    return out


def _merge_runs(parts: list[tuple[str, bool]]) -> list[str]:
    """Append each match to the piece before it when that piece is not itself a match."""
    out: list[str] = []
    previous_match = False
    for piece, is_match in parts:
        if is_match and not previous_match and out:
            out[-1] += piece
        else:
            out.append(piece)
        previous_match = is_match
    return out


def _is_identity(step: dict) -> bool:
    return (
        step.get("type") == "ByteLevel"
        and not step.get("use_regex", True)
        and not step.get("add_prefix_space")
    )


@dataclass
class PreTokenizer:
    """A pipeline of HF-style pre-tokenizer steps, described by ``steps`` (JSON-like dicts).

    Supported step types: ``Split`` (``pattern``, ``behavior``), ``Digits`` (``individual_digits``) and
    ``ByteLevel`` (``add_prefix_space``, ``use_regex``). Build one with :meth:`from_pattern` for our own
    tokenizers; :mod:`tokenizers_bpe.hf_json` builds others from a ``tokenizer.json``.
    """

    steps: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        # ByteLevel without regex or prefix space changes nothing here (the byte mapping happens later)
        effective = [step for step in self.steps if not _is_identity(step)]
        self._funcs: list[Callable[[str], list[str]]] = [self._compile(step) for step in effective]
        self._single: regex.Pattern | None = None
        if len(effective) == 1:
            step = effective[0]
            if step["type"] == "Split" and step.get("behavior", "Isolated") == "Isolated":
                self._single = regex.compile(step["pattern"])
            elif step["type"] == "ByteLevel" and not step.get("add_prefix_space"):
                self._single = regex.compile(GPT2_PATTERN)

    @classmethod
    def from_pattern(cls, pattern: str) -> PreTokenizer:
        """Our own layout, as Llama-3's: ``Split(pattern, Isolated)`` then ``ByteLevel`` without regex."""
        split = {"type": "Split", "pattern": resolve_pattern(pattern), "behavior": "Isolated"}
        return cls([split, {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}])

    @staticmethod
    def _compile(step: dict) -> Callable[[str], list[str]]:
        kind = step.get("type")
        if kind == "Split":
            behavior = step.get("behavior", "Isolated")
            if behavior not in BEHAVIORS:
                raise TokenizerInputError(f"Split behavior {behavior!r} is not supported; expected one of {BEHAVIORS}")
            compiled = regex.compile(step["pattern"])
            return lambda text: split_pieces(text, compiled, behavior)
        if kind == "Digits":
            compiled = regex.compile(r"\p{N}" if step.get("individual_digits") else r"\p{N}+")
            return lambda text: split_pieces(text, compiled)
        if kind == "ByteLevel":
            prefix = bool(step.get("add_prefix_space"))
            compiled = regex.compile(GPT2_PATTERN) if step.get("use_regex", True) else None

            def byte_level(text: str) -> list[str]:
                if prefix and not text.startswith(" "):
                    text = " " + text
                return split_pieces(text, compiled) if compiled is not None else [text]

            return byte_level
        raise TokenizerInputError(
            f"pre-tokenizer step {kind!r} is not supported; expected Split, Digits or ByteLevel (got {step})"
        )

    def __call__(self, text: str) -> list[str]:
        """Split ``text`` into pieces.

        Example:
            >>> PreTokenizer.from_pattern("gpt2")("Hello world!!")
            ['Hello', ' world', '!!']
        """
        if self._single is not None:
            pieces = self._single.findall(text)
            if "".join(pieces) == text:  # the regex covered everything: the usual case
                return pieces
        pieces = [text] if text else []
        for func in self._funcs:
            pieces = [out for piece in pieces for out in func(piece)]
        return pieces
