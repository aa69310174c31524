"""The memory-lean cross-entropy equals PyTorch's in value and gradient, and its kept gradient memory is reused
only when nothing can still see it."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from minillm import losses
from minillm.losses import _GRADIENT_BUFFER, causal_lm_loss, cross_entropy, free_loss_buffers


@pytest.fixture(autouse=True)
def _fresh_buffer():
    free_loss_buffers()  # every test starts (and leaves) with no kept memory
    yield
    free_loss_buffers()


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
    assert _GRADIENT_BUFFER.nbytes >= 64 * 40 * 4
    # A retained gradient keeps the buffer busy: the next backward must not write into it.
    logits = x @ heads[0].t()
    logits.retain_grad()
    cross_entropy(logits * 1.0, targets).backward()
    held = logits.grad.clone()
    cross_entropy(x @ heads[0].t() * 2.0, targets).backward()
    assert torch.equal(logits.grad, held)


def _step(scale: float, shape: tuple[int, int] = (64, 40), keep=None) -> int:
    """One loss backward on non-leaf logits; returns the gradient's address, ``keep(grad)`` may hold it."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(shape[0], 16, generator=g, requires_grad=True)
    head = torch.randn(shape[1], 16, generator=g, requires_grad=True)
    targets = torch.randint(0, shape[1], (shape[0],), generator=g)
    logits = x @ head.t() * scale  # (N, V)
    seen = []

    def hook(grad: torch.Tensor) -> None:
        seen.append(grad.data_ptr())
        if keep is not None:
            keep(grad)

    logits.register_hook(hook)
    cross_entropy(logits, targets).backward()
    return seen[0]


def test_reuse_happens_once_the_gradient_is_gone():
    first = _step(1.0)
    assert _GRADIENT_BUFFER.data_ptr() == first  # the first step already wrote into the kept memory
    assert _step(2.0) == first and _step(3.0) == first  # and later steps reuse it
    assert _step(4.0, shape=(32, 40)) == first  # a smaller gradient fits in it too
    nbytes = _GRADIENT_BUFFER.nbytes
    assert _step(5.0, shape=(64, 80)) == _GRADIENT_BUFFER.data_ptr()  # a larger one grows it, then reuses
    assert _GRADIENT_BUFFER.nbytes > nbytes and _step(6.0, shape=(64, 80)) == _GRADIENT_BUFFER.data_ptr()


HOLDERS = {
    "hook keeps the gradient": lambda grad, held: held.append(grad),
    "hook keeps a detached alias": lambda grad, held: held.append(grad.detach()),
    "hook keeps a view": lambda grad, held: held.append(grad[1:].view(-1)),
    "hook keeps the storage": lambda grad, held: held.append(grad.untyped_storage()),
    "hook keeps a numpy array": lambda grad, held: held.append(grad.numpy()),
}


def _read(obj, like: torch.Tensor) -> torch.Tensor:
    if isinstance(obj, torch.UntypedStorage):
        return torch.empty(0, dtype=like.dtype).set_(obj, 0, like.shape).clone()
    return torch.as_tensor(obj).clone()


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_kept_gradient_is_never_overwritten(holder):
    _step(1.0)  # the kept memory exists and is free: the next step is lent it
    held = []
    lent = _step(2.0, keep=lambda grad: HOLDERS[holder](grad, held))
    assert lent == _GRADIENT_BUFFER.data_ptr()
    shape = torch.Size([64, 40]) if holder != "hook keeps a view" else torch.Size([63 * 40])
    before = _read(held[0], torch.empty(shape))
    for scale in (3.0, 4.0):  # later steps while it is held get fresh memory
        assert _step(scale) != lent
    torch.testing.assert_close(_read(held[0], before), before, rtol=0, atol=0)
    held.clear()
    assert _step(5.0) == lent  # released: reused again


def test_retained_and_leaf_gradients_are_never_overwritten():
    _step(1.0)
    g = torch.Generator().manual_seed(2)
    leaf = torch.randn(64, 40, generator=g, requires_grad=True)
    targets = torch.randint(0, 40, (64,), generator=g)
    cross_entropy(leaf, targets).backward()  # the leaf's .grad may be the lent tensor itself
    logits = leaf * 2.0
    logits.retain_grad()
    cross_entropy(logits, targets).backward()
    leaf_grad, retained = leaf.grad.clone(), logits.grad.clone()
    for scale in (3.0, 4.0):
        _step(scale)
    assert torch.equal(leaf.grad, leaf_grad) and torch.equal(logits.grad, retained)


def test_two_losses_in_one_backward_get_separate_memory():
    _step(1.0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 16, generator=g, requires_grad=True)
    heads = [torch.randn(40, 16, generator=g, requires_grad=True) for _ in range(2)]
    targets = torch.randint(0, 40, (64,), generator=g)
    logits = [x @ h.t() for h in heads]  # (N, V) each
    seen = []
    for lg in logits:
        lg.register_hook(lambda grad: seen.append(grad.data_ptr()))
    sum(cross_entropy(lg, targets) for lg in logits).backward()
    assert len(set(seen)) == 2 and _GRADIENT_BUFFER.data_ptr() in seen


def test_free_loss_buffers_releases_everything():
    held = []
    _step(1.0, keep=held.append)
    memory = _GRADIENT_BUFFER._memory
    assert memory is not None and _GRADIENT_BUFFER.nbytes > 0
    before = held[0].clone()
    free_loss_buffers()
    assert _GRADIENT_BUFFER.nbytes == 0 and _GRADIENT_BUFFER.data_ptr() is None and not _GRADIENT_BUFFER.busy()
    module_state = list(vars(losses).values()) + list(vars(_GRADIENT_BUFFER).values())
    assert not any(isinstance(v, (torch.Tensor, bytearray, memoryview)) for v in module_state)
    # Only the gradient still alive (through its memoryview) and this test reference the old memory.
    assert sys.getrefcount(memory) == 3  # memory, the still-lent memoryview, getrefcount's argument
    del memory
    assert _step(2.0) != held[0].data_ptr()  # fresh memory: the gradient still held keeps its values
    assert torch.equal(held[0], before)
