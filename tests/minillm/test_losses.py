"""The memory-lean cross-entropy equals PyTorch's in value and gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from minillm.losses import causal_lm_loss, cross_entropy


def test_value_and_gradient_match_pytorch():
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(50, 37, generator=g) * 3).requires_grad_()
    targets = torch.randint(0, 37, (50,), generator=g)
    targets[::4] = -100
    ours = cross_entropy(logits, targets)
    (grad_ours,) = torch.autograd.grad(ours * 2.5, logits)
    ref = F.cross_entropy(logits, targets, ignore_index=-100)
    (grad_ref,) = torch.autograd.grad(ref * 2.5, logits)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(grad_ours, grad_ref)
    assert grad_ours[::4].abs().max() == 0  # ignored rows get no gradient


def test_all_ignored_is_nan_like_pytorch():
    logits = torch.randn(4, 5, requires_grad=True)
    targets = torch.full((4,), -100)
    assert torch.isnan(cross_entropy(logits, targets)) and torch.isnan(F.cross_entropy(logits, targets))


def test_causal_shift():
    logits = torch.randn(2, 6, 11, requires_grad=True)
    labels = torch.randint(0, 11, (2, 6))
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1))
    torch.testing.assert_close(causal_lm_loss(logits, labels), expected)


def test_kept_gradient_buffer_is_reused_only_when_free():
    from minillm.losses import _GRADIENT_BUFFER, cross_entropy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=g, requires_grad=True)
    heads = [torch.randn(40, 16, generator=g, requires_grad=True) for _ in range(2)]
    targets = torch.randint(0, 40, (64,), generator=g)

    def grads(loss_fn):
        for p in (x, *heads):
            p.grad = None
        logits = [x @ h.t() for h in heads]  # both heads first, then both losses: the engine interleaves them
        sum(loss_fn(lg, targets) for lg in logits).backward()
        return [p.grad.clone() for p in (x, *heads)]

    expected = grads(torch.nn.functional.cross_entropy)
    for _ in range(3):  # later rounds reuse the kept buffer
        for got, want in zip(grads(cross_entropy), expected):
            torch.testing.assert_close(got, want)
    kept = _GRADIENT_BUFFER.tensor
    assert kept is not None and kept.shape == (64, 40)
    # A retained gradient keeps the buffer busy: the next backward must not write into it.
    logits = x @ heads[0].t()
    logits.retain_grad()
    cross_entropy(logits * 1.0, targets).backward()
    held = logits.grad.clone()
    cross_entropy(x @ heads[0].t() * 2.0, targets).backward()
    assert torch.equal(logits.grad, held)
