"""Incremental detokenization for streaming, with stop strings.

Each step decodes the whole completion so far and emits the new suffix: decoding token by token would break
characters split over several byte-level tokens and the spaces a tokenizer merges. Held back until more tokens
come: an incomplete UTF-8 tail (a trailing U+FFFD) and any tail that could be the start of a stop string. A stop
string ends the completion and is cut from the text (finish_reason "stop").

    >>> class Chars:  # a toy tokenizer: one id per character
    ...     def decode(self, ids, skip_special_tokens=True):
    ...         return "".join(chr(i) for i in ids)
    >>> text = IncrementalText(Chars(), stops=["##"])
    >>> [text.add(ord(c)) for c in "ab#c#"], text.stopped
    (['a', 'b', '', '#c', ''], False)
    >>> text.add(ord("#")), text.stopped, text.text
    ('', True, 'ab#c')
"""

from __future__ import annotations

from typing import Any


class IncrementalText:
    """The text of one completion as its tokens arrive: :meth:`add` returns what may be shown now."""

    def __init__(self, tokenizer: Any, stops: list[str] | None = None) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in (stops or []) if s]
        self.ids: list[int] = []
        self.emitted = ""  # what the client has been sent
        self.text = ""  # the completion's text so far (cut at a stop string once one is found)
        self.stopped = False

    def add(self, token_id: int) -> str:
        """Record one token; return the new text that is safe to send (may be empty)."""
        if self.stopped:
            return ""
        self.ids.append(int(token_id))
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        cut = self._stop_position(text)
        if cut is not None:
            self.stopped = True
            self.text = text[:cut]
            return self._emit(self.text)
        self.text = text
        if text.endswith("\ufffd"):
            return ""  # an incomplete character: wait for its next byte
        return self._emit(text[: len(text) - self._held_back(text)])

    def finish(self) -> str:
        """The text held back so far (called once the completion ends for another reason than a stop string)."""
        return self._emit(self.text)

    def _emit(self, upto: str) -> str:
        if upto.startswith(self.emitted):
            delta = upto[len(self.emitted):]
        else:  # the decoded text changed under what was sent (rare): send only what lies past it
            delta = upto[len(self.emitted):] if len(upto) > len(self.emitted) else ""
        if delta:
            self.emitted += delta
        return delta

    def _stop_position(self, text: str) -> int | None:
        """Where the first stop string starts in ``text`` (searching from shortly before the new part)."""
        start = max(0, len(self.emitted) - max((len(s) for s in self.stops), default=0))
        found = [i for i in (text.find(stop, start) for stop in self.stops) if i >= 0]
        return min(found) if found else None

    def _held_back(self, text: str) -> int:
        """The length of the longest tail of ``text`` that begins some stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if stop.startswith(text[-size:]):
                    longest = size
                    break
        return longest
