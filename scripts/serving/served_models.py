"""What the server serves: one base model, its named LoRA adapters, its tokenizer and its context length.

Any model :func:`training.model_extraction.load_model_and_tokenizer` loads (our checkpoints, HF directories,
.gguf files, aliases such as ``smollm2``, adapter directories); named adapters go through
:class:`minillm.hf.adapters.AdapterSet` (peft ``set_adapter`` for an adapter, disabled adapter layers for the
base). The base answers to its name (the model path's stem or alias) and to ``"base"``; each adapter to its name.
Only the engine's worker thread calls :meth:`ServedModel.select`, so adapters never switch under a generation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minillm.errors import InputError

logger = logging.getLogger(__name__)

BASE = "base"
DEFAULT_CONTEXT = 2048  # when the config names no context size
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")  # chat formats' turn ends


class UnknownModel(LookupError):
    """The ``model`` field names neither the base nor a loaded adapter."""


@dataclass
class ServedModel:
    """The model to call, its tokenizer, the served names and the generation facts the engine needs."""

    model: Any
    tokenizer: Any
    name: str
    adapter_set: Any = None  # an AdapterSet when adapters are loaded
    context_length: int = DEFAULT_CONTEXT
    eos_token_ids: list[int] = field(default_factory=list)
    pad_token_id: int = 0
    batched: bool = True  # whether left-padded batches give each row what it gives alone
    _selected: str | None = None

    def names(self) -> list[str]:
        """The names ``/v1/models`` lists: the base first, then every adapter."""
        return [self.name, *self.adapter_names()]

    def adapter_names(self) -> list[str]:
        return self.adapter_set.names() if self.adapter_set is not None else []

    def resolve(self, requested: str | None) -> str | None:
        """The adapter a request's ``model`` field picks (None: the base); UnknownModel for another name."""
        if requested is None or requested in (self.name, BASE):
            return None
        if requested in self.adapter_names():
            return requested
        raise UnknownModel(f"no model named {requested!r}; served: {', '.join([*self.names(), BASE])}")

    def select(self, adapter: str | None) -> None:
        """Switch to ``adapter`` (None: the base) when it is not the one in use (worker thread only)."""
        if self.adapter_set is not None and adapter != self._selected:
            self.adapter_set.use(adapter)
        self._selected = adapter

    def stream_function(self) -> Callable[..., Iterator[torch.Tensor]]:
        """The model's ``stream(input_ids, attention_mask, ...)`` (ours natively, HF through a thread)."""
        from minillm.hf.streaming import streaming_function

        return streaming_function(self.adapter_set.model if self.adapter_set is not None else self.model)

    def device(self) -> torch.device:
        from minillm.hf.streaming import model_device

        return model_device(self.model)

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of ``messages`` rendered with the chat template (with the assistant's generation prompt)."""
        text = self.tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_text(self, text: str) -> list[int]:
        """Token ids of a plain prompt (with the tokenizer's own special tokens, e.g. bos)."""
        return list(self.tokenizer.encode(text))


def served_name(model_path: str | os.PathLike) -> str:
    """The base's name: the alias as given, else the path's stem (``model.gguf`` -> ``model``)."""
    from minillm.hf.aliases import is_alias

    text = str(model_path).rstrip("/")
    if is_alias(text) and not Path(text).exists():
        return text
    name = Path(text).stem or Path(text).name
    return name if name and name.lower() != BASE else "model"


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Ids that end a completion: the tokenizer's eos, the model's, and the chat format's end-of-turn tokens."""
    values: list[Any] = [getattr(tokenizer, "eos_token_id", None)]
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    for source in (getattr(base, "config", None), getattr(base, "generation_config", None)):
        get = source.get if isinstance(source, dict) else (lambda key, s=source: getattr(s, key, None))
        values.append(get("eos_token_id"))
    lookup = getattr(tokenizer, "token_to_id", None)
    if callable(lookup):
        values += [lookup(token) for token in END_OF_TURN]
    ids: list[int] = []
    for value in values:
        ids += list(value) if isinstance(value, list | tuple) else [value]
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def supports_batching(model: Any) -> bool:
    """Left-padded batches: decoder-only models (ours, peft over ours, transformers causal LMs); an
    encoder-decoder runs one request at a time."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    config = getattr(base, "config", None)
    encoder_decoder = getattr(config, "is_encoder_decoder", False)
    return not (encoder_decoder or getattr(config, "model_type", "") in ("t5", "encoder_decoder"))


def serve_model(model: Any, tokenizer: Any, name: str, adapters: Sequence[tuple[str, Path]] = (),
                base_name: str | None = None, check_base: bool = True) -> ServedModel:
    """A :class:`ServedModel` over a loaded model and tokenizer, loading each ``(name, directory)`` adapter."""
    from minillm.hf.streaming import can_generate
    from rag.rag_model import model_context_length

    if tokenizer is None:
        raise InputError(f"model {name!r} has no tokenizer.json; pass --tokenizer_path")
    if not can_generate(model):
        raise InputError(f"{name!r} holds a {type(model).__name__}, which does not generate text; serve a "
                         "decoder checkpoint or a causal LM")
    adapter_set = None
    if adapters:
        from minillm.hf.adapters import AdapterSet

        adapter_set = AdapterSet(model, base_name=base_name, check_base=check_base)
        for adapter_name, directory in adapters:
            adapter_set.load(adapter_name, directory)
        adapter_set.use(None)
    eos = stop_token_ids(model, tokenizer)
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = int(pad) if pad is not None else (eos[0] if eos else 0)
    context = model_context_length(model) or DEFAULT_CONTEXT
    served = ServedModel(model, tokenizer, name, adapter_set, context, eos, pad, supports_batching(model))
    logger.info("serving %s (context %d, adapters: %s)", name, context, ", ".join(served.adapter_names()) or "none")
    return served


def load_served_model(model_path: str, adapters: Sequence[tuple[str, Path]] = (), tokenizer_path: str | None = None,
                      device: str | None = None, base_name: str | None = None,
                      check_base: bool = True) -> ServedModel:
    """Load ``model_path`` (anything load_model_and_tokenizer takes) and its adapters for serving."""
    from training.model_extraction import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_path, tokenizer_path=tokenizer_path, device=device)
    return serve_model(model, tokenizer, served_name(model_path), adapters, base_name, check_base)
