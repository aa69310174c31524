"""What the Trainer does to one batch: move it, weigh it, read the loss off the model's output."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from minillm.errors import InputError
from minillm.losses import IGNORE_INDEX


def require_mapping(batch: Any) -> Mapping[str, Any]:
    """The batch itself, or a clear error when it is not a dict of model inputs."""
    if not isinstance(batch, Mapping):
        raise InputError(
            f"batches must be dicts passed as model(**batch) (input_ids, attention_mask, labels ...), "
            f"got {type(batch).__name__}"
        )
    return batch


def to_device(batch: Any, device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch dict to ``device`` (the batch is passed as ``model(**batch)``)."""
    require_mapping(batch)
    non_blocking = device.type == "cuda"
    return {k: (v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v) for k, v in batch.items()}


def loss_weight(batch: Mapping[str, Any]) -> float:
    """How much a micro-batch counts in a token-weighted mean: label tokens (not -100), else rows."""
    labels = require_mapping(batch).get("labels")
    if torch.is_tensor(labels):
        return float((labels != IGNORE_INDEX).sum().item())
    first = next((v for v in batch.values() if torch.is_tensor(v)), None)
    return float(first.shape[0]) if first is not None and first.dim() else 1.0


def count_tokens(batch: Mapping[str, Any]) -> int:
    """Real tokens of a batch (attention mask sum when it is on the CPU, else the input_ids size)."""
    mask = require_mapping(batch).get("attention_mask")
    if torch.is_tensor(mask) and mask.device.type == "cpu":
        return int(mask.sum().item())
    ids = batch.get("input_ids")
    return int(ids.numel()) if torch.is_tensor(ids) else 0


def loss_of(output: Any, step: int) -> torch.Tensor:
    """``output.loss`` (or ``output["loss"]``, or the first element of a tuple), with a clear error if absent."""
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, Mapping):
        loss = output.get("loss")
    if loss is None and isinstance(output, tuple) and output and torch.is_tensor(output[0]) and output[0].dim() == 0:
        loss = output[0]
    if loss is None:
        raise InputError(
            f"the model returned no loss at step {step}; batches must include 'labels' so model(**batch).loss is set"
        )
    return loss


def zero_loss(output: Any, loss: torch.Tensor) -> torch.Tensor:
    """A 0 whose graph runs through the model's logits: what a micro-batch without label tokens contributes when
    every rank must still run backward (its ``loss`` is 0/0 = NaN, and so would its gradient be)."""
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, Mapping):
        logits = output.get("logits")
    source = logits if torch.is_tensor(logits) and logits.requires_grad else loss
    return source.float().nan_to_num(0.0, 0.0, 0.0).sum() * 0.0


def prepare_batch(model: Any, batch: Any, generator: torch.Generator, tokenizer: Any) -> Any:
    """``model.prepare_batch(batch, generator=..., tokenizer=...)`` when the model defines that hook, else the
    batch as it is. No branch on the model's kind: any model may define the hook (the encoder masks plain-text
    batches there); ``generator`` is the Trainer's, so its draws are part of every checkpoint."""
    hook = getattr(model, "prepare_batch", None)
    return hook(require_mapping(batch), generator=generator, tokenizer=tokenizer) if callable(hook) else batch


def innermost_model(model: Any) -> Any:
    """The model inside DDP's ``module`` and peft's wrappers."""
    inner = getattr(model, "module", model)  # DDP
    get_base = getattr(inner, "get_base_model", None)  # peft
    return get_base() if callable(get_base) else inner


def forward_parameters(model: Any) -> set[str] | None:
    """The keyword names the innermost model's ``forward`` declares (through DDP/FSDP and peft wrappers), or None
    when it takes any keyword and names none."""
    parameters = inspect.signature(innermost_model(model).forward).parameters
    named = {n for n, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named or None


def check_batch_keys(model: Any, batch: Mapping[str, Any]) -> None:
    """Refuse batch keys the model's forward does not declare: transformers models take ``**kwargs`` and would
    silently ignore them (packed rows' ``segment_ids``: documents would attend to each other)."""
    named = forward_parameters(model)
    if named is None:
        return
    unknown = sorted(set(require_mapping(batch)) - named)
    if unknown:
        raise InputError(
            f"batch key(s) {unknown} are not parameters of {type(innermost_model(model)).__name__}.forward, which would ignore them "
            f"(it takes {', '.join(sorted(named & {'input_ids', 'attention_mask', 'labels', 'position_ids'}))} ...); "
            "build the loaders for this model (create_dataloaders(..., packing=False) pads instead of packing) "
            "or drop the key"
        )
