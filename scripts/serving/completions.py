"""From an OpenAI request to a :class:`~.engine.GenerationRequest`, and the response objects OpenAI clients read
(``chat.completion``, ``chat.completion.chunk``, ``text_completion``), with usage token counts."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .engine import GenerationRequest
from .errors import APIError
from .schemas import SamplingFields


def plan_max_tokens(prompt_tokens: int, requested: int | None, context: int, default_cap: int) -> int:
    """``max_tokens`` for a prompt: the request's, or the rest of the context capped at ``default_cap``; 400 when
    the prompt, or the prompt plus ``max_tokens``, does not fit the model's context."""
    if prompt_tokens == 0:
        raise APIError(400, "the prompt encodes to no tokens; send a non-empty prompt", param="prompt")
    if prompt_tokens >= context:
        raise APIError(400, f"the prompt has {prompt_tokens} tokens but the model's context is {context} tokens; "
                            "shorten it", param="messages", code="context_length_exceeded")
    if requested is None:
        return min(context - prompt_tokens, default_cap)
    if prompt_tokens + requested > context:
        raise APIError(400, f"the prompt's {prompt_tokens} tokens plus max_tokens {requested} exceed the model's "
                            f"context of {context} tokens; lower max_tokens to at most {context - prompt_tokens}",
                       param="max_tokens", code="context_length_exceeded")
    return requested


def check_supported(body: SamplingFields) -> None:
    """400 for options we do not serve."""
    if body.n != 1:
        raise APIError(400, f"n={body.n} is not supported (one choice per request); send n=1, or several "
                            "requests (they are batched)", param="n")
    if len(body.stop_list()) > 4:
        raise APIError(400, f"stop holds {len(body.stop_list())} strings; OpenAI's limit is 4", param="stop")


def generation_request(body: SamplingFields, prompt_ids: list[int], max_tokens: int,
                       adapter: str | None) -> GenerationRequest:
    """The engine request for ``body`` (temperature 0: greedy; top_p 1: no nucleus filter)."""
    return GenerationRequest(prompt_ids=prompt_ids, max_tokens=max_tokens, temperature=body.temperature,
                             top_p=None if body.top_p >= 1.0 else body.top_p, seed=body.seed,
                             stop=body.stop_list(), adapter=adapter)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class ResponseShape:
    """Builds the response objects of one request (one id and creation time for all its chunks)."""

    def __init__(self, kind: str, model: str) -> None:
        self.kind, self.model = kind, model
        self.id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def _head(self, object_name: str) -> dict[str, Any]:
        return {"id": self.id, "object": object_name, "created": self.created, "model": self.model}

    def complete(self, text: str, reason: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        """The whole response of a non-streamed request."""
        if self.kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                      "logprobs": None}
            body = self._head("chat.completion")
        else:
            choice = {"index": 0, "text": text, "finish_reason": reason, "logprobs": None}
            body = self._head("text_completion")
        return {**body, "choices": [choice], "usage": usage(prompt_tokens, completion_tokens)}

    def chunk(self, text: str | None, reason: str | None = None, first: bool = False) -> dict[str, Any]:
        """One streamed chunk: new text, or (with ``reason``) the last one."""
        if self.kind == "chat":
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text is not None:
                delta["content"] = text
            return {**self._head("chat.completion.chunk"),
                    "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}]}
        return {**self._head("text_completion"),
                "choices": [{"index": 0, "text": text or "", "finish_reason": reason, "logprobs": None}]}
