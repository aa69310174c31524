"""Token streaming for transformers (and peft) causal LMs, with the signature of our models' ``.stream``.

transformers' ``generate`` runs in a worker thread and hands every new token to a ``BaseStreamer`` that fills a
queue; :func:`stream` yields them, one (B,) tensor of ids per step. The tokens are therefore exactly
``model.generate``'s (greedy output equals ``generate(do_sample=False)``), computed with transformers' own KV
cache whatever its version calls it. Settings are validated and defaulted as ours are
(:func:`minillm.generation.resolve_settings`: eos/pad from the model's generation config), ``top_k=None`` and
``top_p=None`` switch those filters off (transformers would fall back to its defaults), stop strings are a
``StoppingCriteria`` decoding each row's tail with any tokenizer of the protocol (ours or ``HFTokenizer``), and
``seed`` seeds a forked RNG so the caller's random state is untouched. Closing the generator early stops the
worker at its next step; an exception in the worker is raised in the caller.

:func:`streaming_function` gives the ``stream`` callable of any model: its own (ours, or a PeftModel over ours,
which forwards it) or :func:`stream` bound to it.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from minillm.errors import InputError
from minillm.generation import GenerationSettings, as_batch, resolve_settings

_DONE = object()  # the queue's end marker


def model_device(model: Any) -> torch.device:
    """Where the model's input embedding lives (inputs go there)."""
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if get is not None else None
    if embedding is not None and getattr(embedding, "weight", None) is not None:
        return embedding.weight.device
    return next(model.parameters()).device


def generation_defaults(model: Any) -> dict[str, Any]:
    """``eos_token_id`` / ``pad_token_id`` from the model's generation config, else its config."""
    defaults: dict[str, Any] = {}
    for source in (getattr(model, "config", None), getattr(model, "generation_config", None)):  # later wins
        for key in ("eos_token_id", "pad_token_id"):
            value = getattr(source, key, None)
            if value is not None:
                defaults[key] = value
    return defaults


def generate_options(settings: GenerationSettings) -> dict[str, Any]:
    """transformers ``generate`` keyword arguments for our validated settings."""
    options: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.do_sample,
                               "pad_token_id": settings.pad_token_id}
    if settings.eos_token_ids:
        options["eos_token_id"] = settings.eos_token_ids
    if settings.repetition_penalty != 1.0:
        options["repetition_penalty"] = settings.repetition_penalty
    if settings.do_sample:
        options.update(temperature=settings.temperature, top_k=settings.top_k or 0,
                       top_p=1.0 if settings.top_p is None else settings.top_p)
    return options


@functools.cache
def _classes() -> tuple[type, type]:
    """The streamer and stopping-criterion classes, built on transformers' bases (imported here, lazily)."""
    from transformers import StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    class QueueStreamer(BaseStreamer):
        """Puts each step's tokens (B,) on a queue; the first ``put`` (the prompt) is skipped."""

        def __init__(self) -> None:
            self.queue: queue.Queue = queue.Queue()
            self.prompt_seen = False

        def put(self, value: torch.Tensor) -> None:
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            self.queue.put(value.reshape(-1))

        def end(self) -> None:
            self.queue.put(_DONE)

    class StopCriterion(StoppingCriteria):
        """Ends a row once its generated text holds a stop string; ends every row once ``cancelled`` is set."""

        def __init__(self, prompt_length: int, stops: list[str], tokenizer: Any, cancelled: threading.Event) -> None:
            self.prompt_length, self.stops, self.tokenizer, self.cancelled = prompt_length, stops, tokenizer, cancelled
            self.tail = max((len(s) for s in stops), default=0) + 4

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            done = torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool,
                              device=input_ids.device)
            for row, ids in enumerate(input_ids[:, self.prompt_length:].tolist() if self.stops else []):
                text = self.tokenizer.decode(ids[-self.tail:])
                done[row] |= any(stop in text for stop in self.stops)
            return done

    return QueueStreamer, StopCriterion


def stream(
    model: Any,
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
) -> Iterator[torch.Tensor]:
    """Yield the next token (B,) of every row of a transformers/peft causal LM as ``model.generate`` makes it.

    Same arguments as our ``stream``; finished rows emit ``pad_token_id`` while others go on. Tokens come on the CPU.
    """
    from transformers import StoppingCriteriaList

    device = model_device(model)
    ids = as_batch(input_ids, device)
    settings = resolve_settings(
        generation_defaults(model), eos_token_id, pad_token_id, stop, max_new_tokens=max_new_tokens,
        do_sample=do_sample, temperature=temperature, top_k=top_k, top_p=top_p,
        repetition_penalty=repetition_penalty, seed=seed,
    )
    if settings.stop and tokenizer is None:
        raise InputError("stop strings need a tokenizer: pass tokenizer=... to stream()")
    if settings.max_new_tokens == 0:
        return
    mask = torch.ones_like(ids) if attention_mask is None else attention_mask.to(device)
    streamer_class, criterion_class = _classes()
    streamer, cancelled, errors = streamer_class(), threading.Event(), []
    criteria = StoppingCriteriaList([criterion_class(ids.shape[1], settings.stop, tokenizer, cancelled)])

    def work() -> None:
        try:
            cuda = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda, enabled=settings.seed is not None):
                if settings.seed is not None:
                    torch.manual_seed(settings.seed)
                model.generate(ids, attention_mask=mask, streamer=streamer, stopping_criteria=criteria,
                               **generate_options(settings))
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)
        finally:
            streamer.end()

    was_training = model.training
    model.eval()
    worker = threading.Thread(target=work, name="minillm-hf-generate", daemon=True)
    worker.start()
    try:
        while (token := streamer.queue.get()) is not _DONE:
            yield token
    finally:
        cancelled.set()
        worker.join()
        model.train(was_training)
    if errors:
        raise errors[0]


def can_generate(model: Any) -> bool:
    """Whether ``model`` makes text: our ``stream``, or a transformers model that says it can generate."""
    if callable(getattr(model, "stream", None)):
        return True
    check = getattr(model, "can_generate", None)
    return bool(check()) if callable(check) else False


def streaming_function(model: Any) -> Callable[..., Iterator[torch.Tensor]]:
    """The model's ``stream`` (ours; a PeftModel forwards it), else :func:`stream` bound to a transformers model."""
    own = getattr(model, "stream", None)
    if callable(own):
        return own
    if not can_generate(model):
        raise InputError(f"a {type(model).__name__} does not generate text; use a causal LM (decoder) model")
    return functools.partial(stream, model)
