"""argparse errors and out-of-range generate options: one line naming the problem and what is valid, exit 2."""

from __future__ import annotations

import pytest

import main as cli

MODES = ["train", "continue", "extract", "generate", "quickstart", "rag"]
# flags each mode requires, so the error under test is the only one
REQUIRED = {"continue": ["--model_path", "m", "--data_path", "d.txt"], "extract": ["--model_path", "m",
            "--output_path", "o"], "generate": ["--prompt", "hi"], "train": [], "quickstart": [], "rag": ["ask"]}


def _one_line_error(argv, capsys) -> str:
    code = cli.main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, err
    assert "usage:" not in err and "Traceback" not in err and captured.out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


@pytest.mark.parametrize("mode", MODES)
def test_unknown_flag_is_one_line_for_every_mode(mode, capsys):
    err = _one_line_error([mode, *REQUIRED[mode], "--no_such_flag", "1"], capsys)
    assert "unrecognized arguments: --no_such_flag" in err and "valid flags: " in err
    assert err.endswith(f"see: python main.py {mode} --help")


def test_a_misspelt_flag_names_the_closest_valid_one(capsys):
    err = _one_line_error(["train", "--d_modle", "64"], capsys)
    assert "--d_modle" in err and "did you mean --d_model?" in err
    err = _one_line_error(["--mode", "generate", "--prompt", "x", "--temprature", "0.5"], capsys)
    assert "did you mean --temperature?" in err


def test_bad_choice_names_the_valid_ones(capsys):
    err = _one_line_error(["train", "--model_type", "foo"], capsys)
    assert "invalid choice: 'foo'" in err and "'decoder_only', 'encoder_only', 'encoder_decoder'" in err
    err = _one_line_error(["extract", *REQUIRED["extract"], "--dtype", "int3"], capsys)
    assert "--dtype" in err and "'bfloat16'" in err


@pytest.mark.parametrize(("mode", "argv", "fragment"), [
    ("generate", [], "the following arguments are required: --prompt"),
    ("continue", ["--data_path", "d.txt"], "required: --model_path"),
    ("extract", ["--model_path", "m"], "required: --output_path"),
])
def test_missing_required_flag(mode, argv, fragment, capsys):
    assert fragment in _one_line_error([mode, *argv], capsys)


@pytest.mark.parametrize(("argv", "fragment"), [
    (["train", "--max_steps", "abc"], "argument --max_steps: invalid int value: 'abc'"),
    (["train", "--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["continue", "--model_path", "m", "--data_path", "d", "--epochs"], "argument --epochs: expected one argument"),
    (["quickstart", "--max_minutes", "ten"], "invalid float value: 'ten'"),
])
def test_bad_type_or_missing_value(argv, fragment, capsys):
    assert fragment in _one_line_error(argv, capsys)


def test_flags_without_a_mode_are_one_line(capsys):
    err = _one_line_error(["--data_path", "x.txt"], capsys)
    assert "no mode given" in err and "train, continue, extract, generate, quickstart" in err


@pytest.mark.parametrize(("flag", "value", "expected"), [
    ("--temperature", "-1", ">= 0"),
    ("--top_p", "0", "in (0, 1]"),
    ("--top_p", "1.5", "in (0, 1]"),
    ("--top_k", "-3", ">= 0"),
    ("--max_new_tokens", "0", ">= 1"),
    ("--repetition_penalty", "0", "> 0"),
])
def test_generate_refuses_out_of_range_sampling(flag, value, expected, capsys, tmp_path):
    # refused before any model is looked for: the path does not even exist
    err = _one_line_error(["generate", "--model_path", str(tmp_path / "absent"), "--prompt", "hi", flag, value],
                          capsys)
    assert f"error: {flag} " in err and "is out of range" in err and expected in err, err
