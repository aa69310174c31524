"""The object every forward pass returns: ``.loss`` (with labels) and ``.logits``, like transformers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class ModelOutput:
    """Forward result. Indexable by name (``out["logits"]``) as transformers' outputs are."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None
    encoder_last_hidden_state: torch.Tensor | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        """The names of the fields that are set (not None), as ``dict.keys`` of a transformers output."""
        return [k for k in ("loss", "logits", "hidden_states", "encoder_last_hidden_state") if getattr(self, k) is not None]
