"""Added tokens (special or not): matched whole in the input, never split, never merged by BPE."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass

import regex

from .errors import TokenizerInputError

#: ``allowed_special`` values: "all" honours every special token found in the text (HF's behaviour),
#: "none" encodes special-token text as ordinary text, a collection honours only the tokens it names.
AllowedSpecial = str | Collection[str]


@dataclass(frozen=True)
class AddedToken:
    """One entry of ``tokenizer.json``'s ``added_tokens`` (same fields, same meaning)."""

    id: int
    content: str
    special: bool = True
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> AddedToken:
        """Build from a ``tokenizer.json`` entry; unknown keys are ignored."""
        if not isinstance(data.get("id"), int) or not isinstance(data.get("content"), str):
            raise TokenizerInputError(
                f"added token {data!r} needs an int 'id' and a str 'content'"
            )
        keys = ("special", "single_word", "lstrip", "rstrip", "normalized")
        return cls(data["id"], data["content"], **{key: bool(data[key]) for key in keys if key in data})

    def to_dict(self) -> dict:
        """The ``tokenizer.json`` entry, in HF's key order."""
        data = asdict(self)
        order = ("id", "content", "single_word", "lstrip", "rstrip", "normalized", "special")
        return {key: data[key] for key in order}


class AddedVocabulary:
    """Finds added tokens in text: leftmost match wins, then the longest (as HF's Aho-Corasick search)."""

    def __init__(self, tokens: list[AddedToken]):
        self.tokens = sorted(tokens, key=lambda token: token.id)
        self.by_content = {token.content: token for token in self.tokens}
        self.special_contents = frozenset(token.content for token in self.tokens if token.special)
        self._patterns: dict[frozenset[str], regex.Pattern | None] = {}
        # every match starts with one of these: checking them with `in` (C speed) skips most texts at once
        self._first_chars = "".join(sorted({token.content[0] for token in self.tokens if token.content}))

    def _pattern(self, allowed: frozenset[str]) -> regex.Pattern | None:
        pattern = self._patterns.get(allowed, False)
        if pattern is False:
            alternatives = []
            chosen = [t for t in self.tokens if not t.special or t.content in allowed]
            for token in sorted(chosen, key=lambda t: len(t.content), reverse=True):
                core = regex.escape(token.content)
                if token.single_word:
                    core = rf"(?<!\w){core}(?!\w)"
                if token.lstrip:
                    core = rf"\s*{core}"
                if token.rstrip:
                    core = rf"{core}\s*"
                alternatives.append(core)
            pattern = regex.compile("(" + "|".join(alternatives) + ")") if alternatives else None
            self._patterns[allowed] = pattern
        return pattern

    def resolve_allowed(self, allowed_special: AllowedSpecial) -> frozenset[str]:
        """Turn an ``allowed_special`` policy into the set of special tokens to honour.

        Example:
            >>> vocab = AddedVocabulary([AddedToken(0, "<s>"), AddedToken(1, "</s>")])
            >>> sorted(vocab.resolve_allowed("all")), sorted(vocab.resolve_allowed({"<s>"}))
            (['</s>', '<s>'], ['<s>'])
        """
        if allowed_special == "all":
            return self.special_contents
        if allowed_special == "none":
            return frozenset()
        if isinstance(allowed_special, str):
            raise TokenizerInputError(
                f"allowed_special={allowed_special!r} is not a policy; use 'all', 'none' or a set of tokens"
            )
        allowed = frozenset(allowed_special)
        unknown = sorted(allowed - self.special_contents)
        if unknown:
            raise TokenizerInputError(
                f"allowed_special names {unknown}, which are not special tokens of this tokenizer; known: "
                f"{sorted(self.special_contents)}"
            )
        return allowed

    def may_match(self, text: str) -> bool:
        """False when no added token can occur in ``text`` (none of their first characters is there).

        Example:
            >>> AddedVocabulary([AddedToken(0, "<s>")]).may_match("no tags here")
            False
        """
        for char in self._first_chars:
            if char in text:
                return True
        return False

    def split(self, text: str, allowed: frozenset[str]) -> list[tuple[str, int | None]]:
        """Cut ``text`` into ``(segment, None)`` for ordinary text and ``(match, id)`` for added tokens.

        Example:
            >>> vocab = AddedVocabulary([AddedToken(0, "<|endoftext|>")])
            >>> vocab.split("a<|endoftext|>b", frozenset({"<|endoftext|>"}))
            [('a', None), ('<|endoftext|>', 0), ('b', None)]
        """
        pattern = self._pattern(allowed)
        if pattern is None or not self.may_match(text):
            return [(text, None)] if text else []
        parts = pattern.split(text)
        out: list[tuple[str, int | None]] = []
        for index, part in enumerate(parts):
            if index % 2 == 0:
                if part:
                    out.append((part, None))
            else:
                token = self.by_content.get(part) or self.by_content[part.strip()]
                out.append((part, token.id))
        return out
