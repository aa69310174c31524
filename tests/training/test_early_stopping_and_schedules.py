"""Pure pieces: EarlyStopping counting and the learning-rate schedule values."""

from __future__ import annotations

import math

import pytest

from training import EarlyStopping
from training.schedules import lr_factor


def test_early_stopping_counts_patience_with_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    assert [stopper.step(v, step=i) for i, v in enumerate([1.0, 0.95, 0.5, 0.45, 0.44])] == [
        True, False, True, False, False]
    assert stopper.should_stop and stopper.best == 0.5 and stopper.best_step == 2


def test_early_stopping_max_mode_and_state_round_trip():
    stopper = EarlyStopping(patience=3, mode="max")
    stopper.step(0.1)
    stopper.step(0.05)
    copy = EarlyStopping(patience=3, mode="max")
    copy.load_state_dict(stopper.state_dict())
    assert copy.bad_epochs == 1 and copy.best == 0.1 and not copy.should_stop
    copy.step(0.0)
    copy.step(0.0)
    assert copy.should_stop


def test_early_stopping_nan_is_never_an_improvement_and_none_patience_never_stops():
    stopper = EarlyStopping(patience=None)
    stopper.step(1.0)
    assert not stopper.step(math.nan)
    for _ in range(20):
        stopper.step(5.0)
    assert not stopper.should_stop


@pytest.mark.parametrize("kwargs", [{"patience": 0}, {"patience": 1.5}, {"min_delta": -1}, {"mode": "up"}])
def test_early_stopping_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        EarlyStopping(**kwargs)


def test_schedule_values():
    assert [lr_factor(s, "constant", warmup_steps=4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = [lr_factor(s, "cosine", warmup_steps=2, total_steps=6) for s in range(8)]
    assert cosine[:2] == [0.5, 1.0]
    assert cosine[2:] == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466, 0.0, 0.0])
    assert [lr_factor(s, "linear", total_steps=4, min_lr_ratio=0.2) for s in range(5)] == pytest.approx(
        [1.0, 0.8, 0.6, 0.4, 0.2])
    with pytest.raises(ValueError, match="total_steps"):
        lr_factor(3, "cosine")


def test_docstring_examples_hold():
    import doctest

    from training import early_stopping, schedules

    for module in (early_stopping, schedules):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
