"""Muon for the hidden matrices, AdamW for the rest, as one optimizer the Trainer drives like any other.

Muon (``torch.optim.Muon``: momentum, then Newton-Schulz orthogonalization of each update) is meant for the 2-D
weights inside the blocks; embeddings, the output head and every 1-D parameter (norms, biases) stay with AdamW,
as its authors prescribe. :class:`MuonAdamW` holds both: its ``param_groups`` are the Muon groups followed by the
AdamW groups (the very dicts the two inner optimizers read, so the Trainer's schedule, which rescales every
group's ``lr``, drives both), and one ``state`` shared by the two, so ``state_dict`` / ``load_state_dict`` and
therefore checkpoints and exact resume work as for plain AdamW.

>>> optimizer = MuonAdamW(muon_and_adamw_groups(model, weight_decay=0.1), lr=3e-3, muon_lr=0.02)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from minillm.errors import InputError

# torch.optim.Muon's defaults (momentum, nesterov, Newton-Schulz coefficients, steps and epsilon).
MUON_DEFAULTS: dict[str, Any] = {"momentum": 0.95, "nesterov": True, "ns_coefficients": (3.4445, -4.775, 2.0315),
                                 "ns_steps": 5, "eps": 1e-7}


def is_hidden_matrix(name: str, param: torch.Tensor, embedding_ids: set[int]) -> bool:
    """Whether Muon updates this parameter: 2-D, and neither an embedding nor the output head."""
    return param.dim() == 2 and id(param) not in embedding_ids and not name.endswith("lm_head.weight")


def muon_and_adamw_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters in up to three groups: Muon's hidden matrices (``"muon": True``), AdamW's other 2-D
    weights (embeddings, head) with decay, and AdamW's 1-D parameters without. Each group carries its
    ``param_names`` like :func:`training.optimizers.parameter_groups`."""
    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise InputError(f"{type(model).__name__} has no parameter with requires_grad=True; nothing to train")
    hidden = [(n, p) for n, p in named if is_hidden_matrix(n, p, embedding_ids)]
    if not hidden:
        raise InputError(f"optimizer 'muon' found no hidden 2-D weight in {type(model).__name__} to apply Muon to; "
                         "use optimizer 'adamw'")
    chosen = {id(p) for _, p in hidden}
    other_2d = [(n, p) for n, p in named if id(p) not in chosen and p.dim() >= 2]
    other_1d = [(n, p) for n, p in named if id(p) not in chosen and p.dim() < 2]
    groups = []
    for members, decay, muon in ((hidden, weight_decay, True), (other_2d, weight_decay, False), (other_1d, 0.0, False)):
        if members:
            groups.append({"params": [p for _, p in members], "weight_decay": decay, "muon": muon,
                           "param_names": [n for n, _ in members]})
    return groups


def orthogonalize(updates: torch.Tensor, coefficients: tuple[float, float, float], steps: int,
                  eps: float) -> torch.Tensor:
    """Newton-Schulz orthogonalization of a stack of same-shape matrices, (n, A, B) -> (n, A, B) in bfloat16.

    The iteration of ``torch.optim.Muon`` (quintic, its coefficients, in bfloat16, on the wide orientation, each
    matrix first scaled to unit Frobenius norm), batched: one ``baddbmm`` per product for the whole stack
    instead of one ``addmm`` per matrix. tests/training/test_muon.py checks it against ``torch.optim.Muon``.
    """
    a, b, c = coefficients
    x = updates.bfloat16()
    tall = x.shape[1] > x.shape[2]
    if tall:
        x = x.mT  # (n, B, A): iterate on the wide side, the Gram matrix is the smaller one
    x = x / x.norm(dim=(1, 2), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT  # (n, r, r)
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, gram_update, x, beta=a)
    return x.mT if tall else x


class MuonAdamW(torch.optim.Optimizer):
    """Muon on the groups marked ``"muon": True`` (at ``muon_lr``), ``torch.optim.AdamW`` on the others (at
    ``lr``).

    Muon follows ``torch.optim.Muon`` (nesterov momentum 0.95 as an EMA, Newton-Schulz in bfloat16, decoupled
    weight decay ``lr * weight_decay``, the update scaled by sqrt(max(1, rows/cols)), its "original" rule) with
    one difference, speed: matrices of the same shape are orthogonalized together (:func:`orthogonalize`).
    ``torch.optim.Muon`` runs 15 small products per matrix one matrix at a time, which cost 27% of a training
    step of the recipe's 4-layer model on 2 CPU cores.
    """

    def __init__(self, groups: list[dict[str, Any]], lr: float, muon_lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not muon_lr > 0:
            raise InputError(f"muon_lr must be > 0, got {muon_lr!r}")
        muon_groups = [{**MUON_DEFAULTS, **g, "lr": muon_lr} for g in groups if g.get("muon")]
        adam_groups = [{**g, "lr": lr} for g in groups if not g.get("muon")]
        super().__init__(muon_groups + adam_groups, {})
        self._muon_count = len(muon_groups)
        self._adamw = torch.optim.AdamW(self.param_groups[self._muon_count :] or [{"params": []}], lr=lr,
                                        betas=tuple(betas), eps=eps)
        self._link()

    def _link(self) -> None:
        """Point the inner AdamW at this optimizer's group dicts and state (after init and every load)."""
        self._adamw.param_groups = self.param_groups[self._muon_count :]
        self._adamw.state = self.state

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter (Muon's, then AdamW's)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups[: self._muon_count]:
            self._muon_step(group)
        if self._adamw.param_groups:
            self._adamw.step()
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        buffers = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
            buffers.append(state["momentum_buffer"])
        momentum = group["momentum"]
        torch._foreach_lerp_(buffers, grads, 1 - momentum)
        updates = [g.lerp(b, momentum) for g, b in zip(grads, buffers, strict=True)] if group["nesterov"] else buffers
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(params):
            by_shape.setdefault(tuple(p.shape), []).append(i)
        lr, decay = group["lr"], group["weight_decay"]
        torch._foreach_mul_(params, 1 - lr * decay)
        for (rows, cols), members in by_shape.items():
            stack = torch.stack([updates[i] for i in members])  # (n, rows, cols)
            ortho = orthogonalize(stack, group["ns_coefficients"], group["ns_steps"], group["eps"])
            scale = lr * math.sqrt(max(1.0, rows / cols))
            for j, i in enumerate(members):
                params[i].add_(ortho[j], alpha=-scale)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._link()
