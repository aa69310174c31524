"""evaluate / compare bad input: one line on stderr, exit 2, no traceback (a bank that is not a list of objects with a
string question, naming the first bad item; a missing model path; results of another bank; a file that is not
ours), in both flag spellings, through main.py and the scripts run as files; and compare on hand-made results."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import main as cli

from .cli_helpers import REPO, run_cli


def results(label: str, questions: dict[str, str], seconds: float = 1.0) -> list[dict]:
    """A results list in evaluate's format, answering ``questions`` (id -> text)."""
    return [{"id": key, "category": "c", "difficulty": "easy", "question": text, "response": f"{label} says {key}",
             "time_seconds": seconds, "timestamp": "2025-01-01T00:00:00+00:00", "label": label, "model": f"m-{label}",
             "adapter": None, "scores": {"rouge_l": 0.5, "keyword_coverage": 0.25}} for key, text in questions.items()]


def write(path, value):
    path.write_text(json.dumps(value))
    return path


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def in_process(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


QUESTIONS = {"1": "What is lupus?", "2": "What is celiac disease?"}


def test_a_bank_with_a_bad_item_names_its_index_both_spellings(tmp_path, capsys):
    bank = write(tmp_path / "bank.json", [{"question": "ok"}, {"question": "fine"}, {"prompt": "no question"}])
    done = run_cli("evaluate", "--questions", str(bank), "--model-path", "smollm2", cwd=tmp_path)
    err = one_line_error(done.returncode, done.stderr)
    assert "item 2 has no 'question'" in err and str(bank) in err
    code, _, err = in_process(capsys, "evaluate", "--questions", bank, "--model_path", "smollm2")
    assert "item 2 has no 'question'" in one_line_error(code, err)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("content", "expected"), [
    ('{"question": "x"}', "holds a JSON dict"),
    ("[1, 2]", "item 0 is a JSON int"),
    ('[{"question": 3}]', "item 0 has question=3"),
    ("not json", "is not valid JSON"),
])
def test_a_bank_that_is_not_a_list_of_objects_with_a_string_question(tmp_path, capsys, content, expected):
    (tmp_path / "bank.json").write_text(content)
    code, _, err = in_process(capsys, "evaluate", "--questions", tmp_path / "bank.json", "--model_path", "smollm2")
    assert expected in one_line_error(code, err)


def test_a_missing_model_path_as_a_script_file(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "--model_path",
                           str(tmp_path / "nowhere"), "--output", str(tmp_path / "r.json")], check=False,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    err = one_line_error(done.returncode, done.stderr)
    assert "--model_path" in err and "nowhere" in err and "does not exist" in err
    assert not (tmp_path / "r.json").exists()


def test_other_missing_inputs_and_bad_flags(tmp_path, capsys):
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--perplexity-data",
                              tmp_path / "val.jsonl")
    assert "--perplexity_data" in one_line_error(code, err) and "val.jsonl" in err
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--questions", tmp_path / "b.json")
    assert "question bank" in one_line_error(code, err) and "does not exist" in err
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--chat", "maybe")
    assert "--chat" in one_line_error(code, err)
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--max_new_tokens", "0")
    assert "--max_new_tokens 0" in one_line_error(code, err)
    code, _, err = in_process(capsys, "evaluate", "--questions", "pubmedqa:3")
    assert "--model_path" in one_line_error(code, err)


def test_an_output_from_another_run_or_not_ours_is_not_resumed(tmp_path, capsys):
    theirs = write(tmp_path / "theirs.json", {"accuracy": 0.9})
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--output", theirs)
    assert "cannot be resumed" in one_line_error(code, err) and "--no_resume" in err
    other = write(tmp_path / "other.json", results("qlora", {"1": "What is an autoimmune disease?"}))
    code, _, err = in_process(capsys, "evaluate", "--model_path", "smollm2", "--label", "base", "--output", other)
    assert "another run (label 'qlora'" in one_line_error(code, err)


def test_compare_refuses_results_of_another_bank_naming_both_files(tmp_path, capsys):
    a = write(tmp_path / "a.json", results("base", QUESTIONS))
    b = write(tmp_path / "b.json", results("full", {"1": "What is lupus?", "3": "What is MS?"}))
    done = run_cli("compare", str(a), str(b), "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    err = one_line_error(done.returncode, done.stderr)
    assert str(a) in err and str(b) in err and "ids only in a.json: 2; only in b.json: 3" in err
    c = write(tmp_path / "c.json", results("full", {"1": "What is lupus?", "2": "What is Graves' disease?"}))
    code, _, err = in_process(capsys, "compare", a, c, "--output_dir", tmp_path / "out")
    assert "the question of id 2 differs" in one_line_error(code, err)
    assert not (tmp_path / "out").exists() and not (tmp_path / "comparison.md").exists()


@pytest.mark.parametrize(("content", "expected"), [
    ({"label": "x"}, "holds a JSON dict"),
    ([{"id": 1, "question": "What is lupus?", "response": "r"}], "item 0 lacks time_seconds, label, model, scores"),
    ("{not json", "not valid JSON"),
])
def test_compare_refuses_a_file_that_is_not_ours(tmp_path, capsys, content, expected):
    a = write(tmp_path / "a.json", results("base", QUESTIONS))
    bad = tmp_path / "bad.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = in_process(capsys, "compare", a, bad)
    assert "is not a results file of ours" in one_line_error(code, err) and expected in err and "bad.json" in err


def test_compare_needs_two_existing_files(tmp_path, capsys):
    a = write(tmp_path / "a.json", results("base", QUESTIONS))
    code, _, err = in_process(capsys, "compare", a)
    assert "two or more results files; got 1" in one_line_error(code, err)
    code, _, err = in_process(capsys, "compare", a, tmp_path / "gone.json")
    assert "gone.json" in one_line_error(code, err) and "does not exist" in err


def test_compare_writes_the_report_where_asked_in_both_spellings(tmp_path, capsys):
    a = write(tmp_path / "a.json", results("base", QUESTIONS, seconds=2.0))
    b = write(tmp_path / "b.json", results("tuned", dict(reversed(QUESTIONS.items())), seconds=0.5))
    for flag, folder in (("--output-dir", "one"), ("--output_dir", "two")):
        code, out, err = in_process(capsys, "compare", a, b, flag, tmp_path / folder)
        assert code == 0, err
        report = (tmp_path / folder / "comparison.md").read_text()
        assert (tmp_path / folder / "comparison.png").stat().st_size > 1000
        assert "| base | m-base | - | 2 | - | **0.500** | **0.250** | - | 2.00 | 4.00 |" in report
        assert "| tuned | m-tuned | - | 2 | - | **0.500** | **0.250** | - | **0.50** | **1.00** |" in out
        assert "| 2 | c | What is celiac disease? | base says 2 | tuned says 2 |" in report
