"""Bad input through main.main(): one line on stderr, exit code 2, no traceback, nothing half-written."""

from __future__ import annotations

import json

import pytest

import main as cli

from .cli_helpers import TINY_MODEL, write_corpus

FAST = [*TINY_MODEL, "--max_steps", "2"]


def run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip()


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("error: ")
    for fragment in fragments:
        assert fragment in last, last


def test_unknown_mode(capsys):
    assert_one_line_error(*run(["--mode", "fly"], capsys), "unknown mode 'fly'")
    assert_one_line_error(*run(["fly"], capsys), "unknown mode 'fly'")


def test_missing_file(tmp_path, capsys):
    code, err = run(["train", "--data_path", str(tmp_path / "nope.txt"), "--checkpoint_dir", str(tmp_path / "r")],
                    capsys)
    assert_one_line_error(code, err, "nope.txt")


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    code, err = run(["train", "--data_path", str(tmp_path / "empty.txt"), "--checkpoint_dir", str(tmp_path / "r")],
                    capsys)
    assert_one_line_error(code, err, "empty")


def test_non_utf8_reports_offset_and_replace_goes_on(tmp_path, capsys):
    data = write_corpus(tmp_path / "d.txt")
    raw = bytearray(data.read_bytes())
    raw[100] = 0xFF
    data.write_bytes(bytes(raw))
    code, err = run(["train", "--data_path", str(data), "--checkpoint_dir", str(tmp_path / "r1"), *FAST], capsys)
    assert_one_line_error(code, err, "100", "--encoding_errors replace")
    code, _ = run(["train", "--data_path", str(data), "--checkpoint_dir", str(tmp_path / "r2"), *FAST,
                   "--encoding_errors", "replace"], capsys)
    assert code == 0


def test_binary_file(tmp_path, capsys):
    (tmp_path / "b.txt").write_bytes(bytes(range(256)) * 50)
    code, err = run(["train", "--data_path", str(tmp_path / "b.txt"), "--checkpoint_dir", str(tmp_path / "r")],
                    capsys)
    assert_one_line_error(code, err, "byte")


def test_data_smaller_than_one_batch(tmp_path, capsys):
    write_corpus(tmp_path / "s.txt", paragraphs=3)
    code, err = run(["train", "--data_path", str(tmp_path / "s.txt"), "--checkpoint_dir", str(tmp_path / "r"),
                     *TINY_MODEL, "--batch_size", "64", "--val_split", "0"], capsys)
    assert_one_line_error(code, err, "batch_size")


def test_empty_val_split(tmp_path, capsys):
    write_corpus(tmp_path / "s.txt", paragraphs=1)
    code, err = run(["train", "--data_path", str(tmp_path / "s.txt"), "--checkpoint_dir", str(tmp_path / "r"),
                     *TINY_MODEL, "--val_split", "0.1"], capsys)
    assert_one_line_error(code, err, "val")


def _saved_run(root, **settings):
    """A run directory as train leaves it after its first checkpoint (run_config.json + a complete checkpoint)."""
    from scripts.train import DEFAULTS

    (root / "checkpoint-2" / "trainer_state").mkdir(parents=True)
    (root / "checkpoint-2" / "trainer_state" / "COMPLETE").write_text("{}")
    (root / "run_config.json").write_text(json.dumps({**DEFAULTS, "preset": "tiny", **settings}))
    return root


def test_conflicting_flags_name_the_saved_and_the_given_value(tmp_path, capsys):
    run_dir = _saved_run(tmp_path / "r", d_model=32, data_path=str(tmp_path / "d.txt"))
    code, err = run(["train", "--resume", "--checkpoint_dir", str(run_dir), "--d_model", "64"], capsys)
    assert_one_line_error(code, err, "conflicting flags", "d_model is 32", "--d_model 64 cannot change it")
    code, err = run(["train", "--resume", "--checkpoint_dir", str(run_dir), "--data_path", str(tmp_path / "e.txt")],
                    capsys)
    assert_one_line_error(code, err, "conflicting flags", "d.txt", "e.txt")
    code, err = run(["train", "--resume", "--checkpoint_dir", str(run_dir), "--model_type", "encoder_only"], capsys)
    assert_one_line_error(code, err, "'decoder_only'", "--model_type 'encoder_only'")


def test_config_with_unknown_keys(tmp_path, capsys):
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 1, "colour": "red", "wings": 2}))
    code, err = run(["train", "--config", str(tmp_path / "c.json")], capsys)
    assert_one_line_error(code, err, "colour", "wings")


def test_config_file_values_are_used(tmp_path, capsys):
    data = write_corpus(tmp_path / "d.txt")
    (tmp_path / "c.yaml").write_text(f"data_path: {data}\nmax_steps: 2\nd_model: 32\nnum_heads: 2\nnum_layers: 1\n"
                                     "vocab_size: 300\nmax_seq_len: 32\nbatch_size: 4\n")
    code, _ = run(["train", "--config", str(tmp_path / "c.yaml"), "--checkpoint_dir", str(tmp_path / "r")], capsys)
    assert code == 0
    saved = json.loads((tmp_path / "r" / "run_config.json").read_text())
    assert saved["d_model"] == 32 and saved["max_steps"] == 2


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    code, err = run(["train", "--resume", "--checkpoint_dir", str(tmp_path / "none")], capsys)
    assert_one_line_error(code, err, "nothing to resume")


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path, capsys):
    (tmp_path / "r" / "best").mkdir(parents=True)  # a previous run that saved a model
    (tmp_path / "r" / "run_config.json").write_text("{}")
    data = write_corpus(tmp_path / "d.txt")
    code, err = run(["train", "--data_path", str(data), "--checkpoint_dir", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "--resume", "--overwrite")
    (tmp_path / "other").mkdir()  # a folder that is not a run: never ours to replace
    (tmp_path / "other" / "something").write_text("x")
    code, err = run(["train", "--data_path", str(data), "--checkpoint_dir", str(tmp_path / "other")], capsys)
    assert_one_line_error(code, err, "not a previous run", "new or empty directory")


def test_generate_with_missing_model(tmp_path, capsys):
    code, err = run(["generate", "--model_path", str(tmp_path / "missing"), "--prompt", "hi"], capsys)
    assert_one_line_error(code, err, "does not exist")


@pytest.mark.parametrize("mode", ["train", "generate", "continue", "extract", "quickstart"])
def test_every_mode_has_help_with_examples(mode, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([mode, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_top_level_help_lists_modes(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(mode in out for mode in ("train", "continue", "extract", "generate"))
