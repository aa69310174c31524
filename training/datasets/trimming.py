"""``--trim_tokens N``: drop or truncate records longer than N tokens of the target tokenizer.

A record's length is what training sees: a ``{"text"}`` record's tokens; an ``{"input", "output"}`` pair's input
and output tokens together; a ``{"messages"}`` record rendered with the tokenizer's chat template (the messages'
contents when it has none). ``drop`` leaves long records out; ``truncate`` shortens the last field (the text, the
output, the last message) to fit, and drops the record only when the rest alone is already too long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minillm.errors import InputError

TRIM_MODES = ("drop", "truncate")


def count_tokens(tokenizer: Any, record: dict[str, Any]) -> int:
    """Tokens of ``record`` as training sees them (see the module docstring)."""
    if "messages" in record:
        template = getattr(tokenizer, "apply_chat_template", None)
        if callable(template):
            return len(template(record["messages"], tokenize=True))
        return sum(len(tokenizer.encode(m["content"])) for m in record["messages"])
    if "text" in record:
        return len(tokenizer.encode(record["text"]))
    return len(tokenizer.encode(record["input"])) + len(tokenizer.encode(record["output"]))


def _last_field(record: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The dict and key holding the text ``truncate`` shortens."""
    if "messages" in record:
        return record["messages"][-1], "content"
    return (record, "text") if "text" in record else (record, "output")


@dataclass
class Trimmer:
    """Applies ``--trim_tokens`` / ``--trim_mode``, counting what it dropped and truncated."""

    tokenizer: Any
    max_tokens: int
    mode: str = "drop"
    dropped: int = 0
    truncated: int = 0

    def __post_init__(self) -> None:
        if self.mode not in TRIM_MODES:
            raise InputError(f"--trim_mode {self.mode!r} is unknown; use one of {', '.join(TRIM_MODES)}")
        if self.max_tokens < 1:
            raise InputError(f"--trim_tokens {self.max_tokens} must be >= 1, e.g. 2048")

    def __call__(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """``record`` when it fits, a shortened copy (``truncate``), or None (dropped)."""
        total = count_tokens(self.tokenizer, record)
        if total <= self.max_tokens:
            return record
        if self.mode == "drop":
            self.dropped += 1
            return None
        shortened = _copy(record)
        holder, key = _last_field(shortened)
        ids = self.tokenizer.encode(holder[key], add_special_tokens=False)
        keep = len(ids) - (total - self.max_tokens)
        while keep > 0:
            holder[key] = self.tokenizer.decode(ids[:keep], skip_special_tokens=True).rstrip("\ufffd")
            excess = count_tokens(self.tokenizer, shortened) - self.max_tokens
            if excess <= 0:
                self.truncated += 1
                return shortened
            keep -= max(excess, 1)  # re-encoding the cut text can merge differently: try a little shorter
        self.dropped += 1
        return None

    def summary(self) -> str:
        return (f"trim to {self.max_tokens} tokens ({self.mode}): {self.dropped} dropped, {self.truncated} "
                "truncated")


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    copy = dict(record)
    if "messages" in copy:
        copy["messages"] = [dict(m) for m in copy["messages"]]
    return copy
