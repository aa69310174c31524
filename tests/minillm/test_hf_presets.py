"""The seed's fine-tuning presets and their overrides: flag > environment > .env > preset."""

from __future__ import annotations

import subprocess
import sys

import pytest

from minillm.errors import InputError
from minillm.hf.aliases import hub_id, is_alias
from minillm.hf.presets import PRESETS, env_overrides, get_preset, read_dotenv, resolve_settings


def test_presets_match_the_seed():
    want = {"paper_understanding": ("mistral-7b", 16, 2048), "code_retrieval": ("llama-3-8b", 32, 4096),
            "fast_prototype": ("mistral-7b", 8, 1024), "high_quality": ("llama-3-8b", 64, 2048)}
    for name, (model, r, context) in want.items():
        p = get_preset(name)
        assert (p.model, p.lora_r, p.max_seq_length, p.lora_alpha) == (model, r, context, 2 * r)
        assert (p.batch_size, p.gradient_accumulation_steps, p.learning_rate, p.epochs, p.lora_dropout) == (
            4, 4, 2e-4, 3, 0.05)
        assert len(p.target_modules) == 7
    assert set(PRESETS) == set(want)


def test_unknown_preset_and_alias_list_the_valid_ones():
    with pytest.raises(InputError, match="fast_prototype"):
        get_preset("fastest")
    with pytest.raises(InputError, match="mistral-7b"):
        hub_id("mistral-8b")
    assert hub_id("Mistral-7B") == "mistralai/Mistral-7B-v0.1" and is_alias("smollm2-135m")


def test_flag_beats_environment_beats_dotenv_beats_preset(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("# seed overrides\nexport QLORA_EPOCHS=5\nQLORA_LR='1e-4'\nMAX_SEQ_LENGTH=512\nFULL_LR=3e-5\n")
    assert read_dotenv(dotenv)["QLORA_LR"] == "1e-4"
    settings = resolve_settings("fast_prototype", "lora", {"batch_size": 2, "epochs": None},
                                environ={"QLORA_EPOCHS": "7"}, dotenv=dotenv)
    assert settings["epochs"] == 7  # environment over .env
    assert settings["learning_rate"] == 1e-4 and settings["max_seq_length"] == 512  # .env over the preset
    assert settings["batch_size"] == 2  # the typed flag over everything
    assert settings["lora_r"] == 8 and settings["model"] == "mistral-7b"
    full = env_overrides("full", environ={}, dotenv=dotenv)
    assert full == {"learning_rate": 3e-5, "max_seq_length": 512}  # QLORA_* do not apply to full fine-tuning


@pytest.mark.parametrize("line", ["QLORA_EPOCHS=three", "QLORA_LR=-1", "not a line"])
def test_malformed_values_are_one_line_errors(tmp_path, line):
    dotenv = tmp_path / ".env"
    dotenv.write_text(line + "\n")
    with pytest.raises(InputError) as caught:
        env_overrides("lora", environ={}, dotenv=dotenv)
    assert "\n" not in str(caught.value) and (".env" in str(caught.value))


def test_module_prints_the_table():
    done = subprocess.run([sys.executable, "-m", "minillm.hf.presets"], capture_output=True, text=True, check=True)
    assert "| paper_understanding | mistral-7b | 16 | 32 | 2048 | 4 x 4 |" in done.stdout
