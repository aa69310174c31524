"""Token sampling and the KV-cached generation loop, shared by the decoder and the encoder-decoder.

A model supplies a *step function*: given the new input ids (B, T) it returns the logits (B, V) of the last
position, keeping its own cache. :func:`generate_stream` drives it, yielding one (B,) tensor of tokens per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from minillm.errors import InputError

StepFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class GenerationSettings:
    """Validated sampling settings (the keyword arguments of ``generate``)."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    eos_token_ids: list[int] = field(default_factory=list)
    pad_token_id: int = 0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    compile: bool = False  # the decoder's compiled step over a static cache (minillm.compiled_decoding)

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise InputError(f"max_new_tokens must be a non-negative integer, got {self.max_new_tokens!r}")
        if self.temperature <= 0 and self.do_sample:
            raise InputError(f"temperature must be > 0 when sampling, got {self.temperature}")
        if self.top_k is not None and self.top_k < 0:
            raise InputError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise InputError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


def resolve_settings(
    defaults: dict[str, Any],
    eos_token_id: int | Sequence[int] | None,
    pad_token_id: int | None,
    stop: str | Sequence[str] | None,
    **kwargs: Any,
) -> GenerationSettings:
    """Merge call arguments with a model's defaults (generation_config.json, then config).

    ``defaults`` may hold ``eos_token_id`` and ``pad_token_id``; explicit arguments win.
    """
    eos = eos_token_id if eos_token_id is not None else defaults.get("eos_token_id")
    eos_ids = [] if eos is None else ([int(eos)] if isinstance(eos, int) else [int(e) for e in eos])
    pad = pad_token_id if pad_token_id is not None else defaults.get("pad_token_id")
    if pad is None:
        pad = eos_ids[0] if eos_ids else 0
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return GenerationSettings(eos_token_ids=eos_ids, pad_token_id=int(pad), stop=stops, **kwargs)


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide positive (multiply negative) logits of already-seen tokens by ``penalty`` (CTRL / transformers)."""
    scores = torch.gather(logits, 1, seen)  # (B, L)
    scores = torch.where(scores < 0, scores * penalty, scores / penalty)
    return logits.scatter(1, seen, scores)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits per row, set the rest to -inf."""
    k = min(k, logits.size(-1))
    threshold = torch.topk(logits, k, dim=-1).values[..., -1, None]  # (B, 1)
    return logits.masked_fill(logits < threshold, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probability mass reaches ``p`` (at least one)."""
    sorted_logits, sorted_idx = torch.sort(logits, descending=False, dim=-1)
    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - p)
    remove_sorted[..., -1:] = False
    remove = remove_sorted.scatter(1, sorted_idx, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def next_tokens(
    logits: torch.Tensor, seen: torch.Tensor, settings: GenerationSettings, generator: torch.Generator | None
) -> torch.Tensor:
    """Choose the next token (B,) from last-position logits (B, V)."""
    logits = logits.float()
    if settings.repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, seen, settings.repetition_penalty)
    if not settings.do_sample:
        return logits.argmax(dim=-1)
    logits = logits / settings.temperature
    if settings.top_k:
        logits = top_k_filter(logits, settings.top_k)
    if settings.top_p is not None and settings.top_p < 1.0:
        logits = top_p_filter(logits, settings.top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


class StopStrings:
    """Detects stop strings in the generated text of each row, decoding only a short tail of tokens."""

    def __init__(self, stops: list[str], tokenizer: Any, batch: int) -> None:
        if stops and tokenizer is None:
            raise InputError("stop strings need a tokenizer: pass tokenizer=... to generate()")
        self.stops = stops
        self.tokenizer = tokenizer
        self.tail = max((len(s) for s in stops), default=0) + 4
        self.generated: list[list[int]] = [[] for _ in range(batch)]

    def update(self, tokens: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
        """Record the new tokens (B,); return a bool (B,) of rows whose text now contains a stop string."""
        hit = torch.zeros_like(active)
        if not self.stops:
            return hit
        for row, token in enumerate(tokens.tolist()):
            if not active[row]:
                continue
            self.generated[row].append(token)
            text = self.tokenizer.decode(self.generated[row][-self.tail :])
            hit[row] = any(stop in text for stop in self.stops)
        return hit


@torch.inference_mode()
def generate_stream(
    step: StepFn,
    first_input: torch.Tensor,
    settings: GenerationSettings,
    history: torch.Tensor,
    tokenizer: Any = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row (B,), step by step, until all rows stop or the budget ends.

    ``first_input`` is what the first step consumes (the prompt for a decoder, the start token for an
    encoder-decoder); ``history`` (B, L) is what the repetition penalty counts as seen. Rows that finished emit
    ``pad_token_id``, as transformers does.
    """
    generator = None
    if settings.seed is not None:
        generator = torch.Generator(device=first_input.device).manual_seed(settings.seed)
    batch = first_input.shape[0]
    active = torch.ones(batch, dtype=torch.bool, device=first_input.device)
    eos = torch.tensor(settings.eos_token_ids, device=first_input.device, dtype=torch.long)
    stops = StopStrings(settings.stop, tokenizer, batch)
    seen = history
    current = first_input
    for _ in range(settings.max_new_tokens):
        logits = step(current)  # (B, V)
        token = next_tokens(logits, seen, settings, generator)
        token = torch.where(active, token, torch.full_like(token, settings.pad_token_id))
        yield token
        finished = torch.isin(token, eos) if len(eos) else torch.zeros_like(active)
        finished |= stops.update(token, active)
        active &= ~finished
        if not bool(active.any()):
            return
        seen = torch.cat([seen, token[:, None]], dim=1)
        current = token[:, None]


def as_batch(input_ids: Any, device: torch.device) -> torch.Tensor:
    """Accept a (B, T) or (T,) tensor or nested lists of ids; return a (B, T) long tensor on ``device``."""
    ids = input_ids if isinstance(input_ids, torch.Tensor) else torch.tensor(input_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise InputError(f"input_ids must be a non-empty (batch, length) tensor, got shape {tuple(ids.shape)}")
    return ids.to(device)


class GenerationMixin:
    """``stream`` and ``generate`` for a model family, in transformers' calling convention.

    A family supplies :meth:`prepare_generation`, returning ``(step, first_input, history)`` for
    :func:`generate_stream`; an encoder-decoder also overrides :meth:`generation_prefix`, the ids ``generate``
    puts before the new tokens (the prompt by default, the decoder start token there). The mixin resolves the settings against
    ``config`` and ``generation_config``, switches to eval mode while generating and restores the mode after.
    """

    config: Any
    generation_config: dict[str, Any]

    def prepare_generation(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, settings: GenerationSettings
    ) -> tuple[StepFn, torch.Tensor, torch.Tensor]:
        """``(step, first_input, history)`` for a (B, T) prompt; called in eval mode."""
        raise NotImplementedError

    def generation_prefix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """What :meth:`generate` returns before the generated tokens (B, L): the prompt, unless overridden."""
        return input_ids

    def _generation_device(self) -> torch.device:
        return self.get_input_embeddings().weight.device  # type: ignore[attr-defined]

    def stream(
        self,
        input_ids: torch.Tensor | Sequence[int] | Sequence[Sequence[int]],
        attention_mask: torch.Tensor | None = None,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        repetition_penalty: float = 1.0,
        eos_token_id: int | Sequence[int] | None = None,
        pad_token_id: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        tokenizer: Any = None,
        compile: bool = False,
    ) -> Iterator[torch.Tensor]:
        """Yield the next token (B,) of every row as it is generated (KV-cached).

        ``compile=True`` (our decoder, plain or int8 projections) runs every step after the prompt through one
        ``torch.compile`` graph over a static cache (:mod:`minillm.compiled_decoding`): the first call compiles
        (tens of seconds on a CPU), later ones are faster than the eager step.
        """
        input_ids = as_batch(input_ids, self._generation_device())
        defaults = {"eos_token_id": self.config.eos_token_id, "pad_token_id": self.config.pad_token_id}
        defaults.update({k: v for k, v in self.generation_config.items() if v is not None})
        settings = resolve_settings(
            defaults, eos_token_id, pad_token_id, stop, max_new_tokens=max_new_tokens, do_sample=do_sample,
            temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty, seed=seed,
            compile=compile,
        )
        if attention_mask is not None:
            attention_mask = attention_mask.to(input_ids.device)
        was_training = self.training  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        try:
            step, first_input, history = self.prepare_generation(input_ids, attention_mask, settings)
            yield from generate_stream(step, first_input, settings, history, tokenizer)
        finally:
            self.train(was_training)  # type: ignore[attr-defined]

    @torch.inference_mode()
    def generate(
        self, input_ids: Any, attention_mask: torch.Tensor | None = None, max_new_tokens: int = 32, **kwargs: Any
    ) -> torch.Tensor:
        """:meth:`generation_prefix` plus the generated tokens (B, L + n), like transformers' ``generate``.

        Same options as :meth:`stream` (``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``eos_token_id`` ...).
        """
        input_ids = as_batch(input_ids, self._generation_device())
        prefix = self.generation_prefix(input_ids)
        new = list(self.stream(input_ids, attention_mask, max_new_tokens=max_new_tokens, **kwargs))
        if not new:
            return prefix
        return torch.cat([prefix, torch.stack(new, dim=1)], dim=1)
