"""Request bodies (pydantic): /predict and OpenAI's chat and text completions.

Fields the OpenAI client may send and we do not use (``user``, ``frequency_penalty`` ...) are accepted and
ignored; wrong types are a 422 with OpenAI's error body (see :mod:`.errors`). ``n`` must be 1 (several choices
per request are not supported: send several requests, they are batched).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class SamplingFields(BaseModel):
    """What chat and text completions share. ``temperature`` 0 means greedy decoding."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: StrictStr | list[StrictStr] | None = None
    seed: int | None = None
    stream: StrictBool = False
    n: int = Field(default=1, ge=1)

    def stop_list(self) -> list[str]:
        """``stop`` as a list (OpenAI takes a string or up to 4 strings)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens


class ChatMessage(BaseModel):
    """One message; ``content`` is a string or OpenAI's list of ``{"type": "text", "text": ...}`` parts."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: StrictStr | list[dict] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(SamplingFields):
    prompt: StrictStr | list[StrictStr]


class PredictRequest(BaseModel):
    """The seed's API: ``{"question"}``; optional ``max_tokens``, ``temperature`` (default 0: greedy), ``model``."""

    model_config = ConfigDict(extra="ignore")

    question: StrictStr = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    model: StrictStr | None = None
