"""The worked examples in the docstrings of tokenizers_bpe stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "bytes_map",
    "pretokenize",
    "trainer",
    "bpe_model",
    "special_tokens",
    "normalize",
    "hf_json",
    "chat_template",
    "storage",
    "roles",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"tokenizers_bpe.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_library_does_not_import_hf_or_minillm():
    import subprocess
    import sys

    code = (
        "import sys, tokenizers_bpe; bad = [m for m in ('transformers', 'tokenizers', 'minillm') "
        "if m in sys.modules]; print(bad)"
    )
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"
