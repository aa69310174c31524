"""Docstring examples of the training modules hold (the time budget's plan, the CLI's schedule choice ...)."""

from __future__ import annotations

import doctest

import pytest

import training.early_stopping
import training.run
import training.run_tokenizer
import training.schedules
import training.stop_rules


@pytest.mark.parametrize(
    "module", [training.stop_rules, training.run, training.run_tokenizer, training.schedules, training.early_stopping]
)
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
