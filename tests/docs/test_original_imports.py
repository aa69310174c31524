"""The original docs' imports of packages we must not ship fail with one line naming minillm's import."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _import_error(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 1
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("documented", "ours"), [
    ("from tokenizers.bpe_tokenizer import BPETokenizer", "from tokenizers_bpe import BPETokenizer"),
    ("from models.encoder_model import EncoderOnlyModel", "from minillm import EncoderOnlyModel"),
])
def test_documented_import_names_ours_from_interpreter_start(documented, ours):
    """No minillm import before it: the virtual environment's start-up hook (scripts/setup_env.sh) answers."""
    line = _import_error(documented)
    assert line.startswith("ModuleNotFoundError") and ours in line


def test_hf_tokenizers_and_own_models_packages_still_import(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "__init__.py").write_text("MINE = 1\n")
    code = "import minillm, tokenizers, models; print(tokenizers.Tokenizer.__name__, models.MINE)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.stdout.split() == ["Tokenizer", "1"], done.stderr
