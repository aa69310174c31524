"""Only validated input errors become one line; a plain ValueError (a bug, or torch's) keeps its traceback."""

from __future__ import annotations

import pytest

import main
import scripts.generate
from minillm.errors import InputError
from tokenizers_bpe.errors import TokenizerInputError


@pytest.mark.parametrize("error", [InputError("bad --prompt"), TokenizerInputError("corrupt tokenizer.json"),
                                   FileNotFoundError("no such file")])
def test_validated_errors_are_one_line_exit_2(monkeypatch, capsys, error):
    def fail(args):
        raise error

    monkeypatch.setattr(scripts.generate, "main", fail)
    assert main.main(["generate", "--prompt", "x"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {error}"


def test_a_plain_value_error_is_a_bug_and_propagates(monkeypatch):
    def bug(args):
        raise ValueError("shapes (2, 3) and (4, 5) not aligned")  # what torch or numpy raise on a bug of ours

    monkeypatch.setattr(scripts.generate, "main", bug)
    with pytest.raises(ValueError, match="not aligned"):
        main.main(["generate", "--prompt", "x"])
