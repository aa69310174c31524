"""The budget-aware recipe: which row a budget gets, how the corpus and the machine adapt it, and that ``train``
uses it only with a time budget and no model-size flag, typed flags winning over its values."""

from __future__ import annotations

import json
import math

import pytest

import main as cli
from training.recipe import (
    BYTES_PER_VOCAB_ENTRY,
    MIN_UPDATES,
    MIN_VOCAB,
    RECIPES,
    choose_recipe,
    corpus_bytes,
    recipe_applies,
)

from ..cli.cli_helpers import write_corpus

BIG = 50_000_000  # a corpus large enough that no corpus rule changes the row


def test_the_table_grows_with_the_budget():
    assert len(RECIPES) >= 3
    minutes = [row.minutes for row in RECIPES]
    assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
    sizes = [row.d_model * row.d_model * row.num_layers for row in RECIPES]
    assert sizes == sorted(sizes)  # more time never gets a smaller model
    for row in RECIPES:
        assert row.d_model % row.num_heads == 0 and row.evidence


def test_each_budget_gets_the_first_row_that_covers_it():
    for row in RECIPES:
        assert choose_recipe(row.minutes, BIG, threads=2).row.d_model == row.d_model
    assert choose_recipe(0.1, BIG, threads=2).row.minutes == RECIPES[0].minutes
    assert choose_recipe(10_000, BIG, threads=2).row.minutes == RECIPES[-1].minutes


def test_more_threads_or_a_gpu_afford_a_larger_row():
    small = choose_recipe(RECIPES[0].minutes, BIG, threads=2)
    assert choose_recipe(RECIPES[0].minutes, BIG, threads=64).row.d_model > small.row.d_model
    assert choose_recipe(RECIPES[0].minutes, BIG, threads=2, cuda=True).row.minutes == RECIPES[-1].minutes


def test_a_small_corpus_gets_a_smaller_vocabulary_and_a_pass_cap():
    row = RECIPES[-1]
    tiny = choose_recipe(row.minutes, 20_000, threads=2)
    assert tiny.row.vocab_size < row.vocab_size and tiny.row.vocab_size >= MIN_VOCAB
    assert tiny.row.vocab_size * BYTES_PER_VOCAB_ENTRY <= 20_000 or tiny.row.vocab_size == MIN_VOCAB
    assert MIN_UPDATES <= tiny.max_steps < tiny.estimated_steps / 10  # the passes end it long before the budget
    assert tiny.settings()["max_steps"] == tiny.max_steps
    assert choose_recipe(RECIPES[0].minutes, 2_000, threads=2).max_steps == MIN_UPDATES  # the floor
    big = choose_recipe(row.minutes, BIG, threads=2)
    assert big.row.vocab_size == row.vocab_size
    assert big.max_steps is None and "max_steps" not in big.settings()  # the budget ends a large corpus's run


def test_the_pass_cap_follows_the_rows_measured_passes():
    for row in RECIPES:
        pick = choose_recipe(row.minutes, 1_003_854, threads=2)  # the corpus the table was measured on
        if pick.max_steps is not None:
            tokens = pick.max_steps * row.batch_size * row.max_seq_len
            chars_per_token = 2.44 + 0.40 * math.log2(pick.row.vocab_size / 1024)
            assert tokens / (1_003_854 / chars_per_token) == pytest.approx(row.max_passes, rel=0.01)
            assert pick.max_steps < pick.estimated_steps


def test_recipe_applies_only_to_a_budgeted_decoder_run_without_size_flags():
    base = {"model_type": "decoder_only", "max_minutes": 3.0, "model": None}
    assert recipe_applies(base, {"data_path", "max_minutes", "lr"})
    assert not recipe_applies(base, {"max_minutes", "d_model"})
    assert not recipe_applies(base, {"preset"})
    assert not recipe_applies({**base, "max_minutes": None}, set())
    assert not recipe_applies({**base, "model_type": "encoder_only"}, set())
    assert not recipe_applies({**base, "model": "smollm2-135m"}, set())


def test_corpus_bytes_counts_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("y" * 50)
    (tmp_path / "image.png").write_bytes(b"z" * 1000)
    assert corpus_bytes(tmp_path) == 150 and corpus_bytes(tmp_path / "a.txt") == 100
    assert corpus_bytes(tmp_path / "missing") == 0


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "d.txt", paragraphs=200)


def _train(capsys, *argv) -> tuple[int, str, dict]:
    code = cli.main(["train", *map(str, argv)])
    err = capsys.readouterr().err
    run_dir = argv[argv.index("--checkpoint_dir") + 1]
    saved = json.loads((run_dir / "run_config.json").read_text()) if (run_dir / "run_config.json").is_file() else {}
    return code, err, saved


def test_train_uses_the_recipe_with_a_budget_and_typed_flags_win(tmp_path, corpus, capsys):
    code, err, saved = _train(capsys, "--data_path", corpus, "--max_minutes", "0.05", "--checkpoint_dir",
                              tmp_path / "a", "--lr", "0.002", "--batch_size", "4")
    assert code == 0, err
    chosen = choose_recipe(0.05, corpus_bytes(corpus))
    assert "recipe for a 0.05-minute budget" in err
    assert saved["d_model"] == chosen.row.d_model and saved["num_layers"] == chosen.row.num_layers
    assert saved["vocab_size"] == chosen.row.vocab_size and saved["max_seq_len"] == chosen.row.max_seq_len
    assert saved["lr"] == 0.002 and saved["batch_size"] == 4  # typed flags keep their values


def test_a_model_size_flag_turns_the_recipe_off(tmp_path, corpus, capsys):
    code, err, saved = _train(capsys, "--data_path", corpus, "--max_minutes", "0.05", "--checkpoint_dir",
                              tmp_path / "b", "--d_model", "32", "--num_layers", "1", "--num_heads", "2",
                              "--vocab_size", "300", "--max_seq_len", "32", "--batch_size", "4")
    assert code == 0, err
    assert "recipe for" not in err and saved["d_model"] == 32 and saved["lr"] == 1e-3
