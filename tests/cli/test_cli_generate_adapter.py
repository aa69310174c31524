"""generate --adapter: a LoRA adapter (PATH, NAME=PATH or a NAME under MODEL/adapters/) changes the text, --use base
gives the base's text back, an adapter directory as --model_path streams through transformers + peft, and a folder
that is no adapter or an adapter of another base is one line on stderr, exit 2."""

from __future__ import annotations

import json
import shutil

import peft
import pytest
import torch
import transformers

import main as cli
from tokenizers_bpe import BPETokenizer

from .cli_helpers import run_cli

LINES = ["The king and the queen spoke to the people about bread and wine.",
         "The river ran past the old mill under a grey sky.", "What is a transformer? A model of attention."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random transformers Llama with our BPE tokenizer in its folder, and two random LoRA adapters on it."""
    root = tmp_path_factory.mktemp("cli-adapter")
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(LINES * 4)
    config = transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=128, initializer_range=0.3,
                                      eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root / "model")
    tokenizer.save(root / "model")
    for seed, name in enumerate(("eli5", "executive")):
        base = transformers.AutoModelForCausalLM.from_pretrained(root / "model")
        model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                          target_modules=["q_proj", "v_proj", "down_proj"]))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for key, param in model.named_parameters():
                if "lora_B" in key:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        model.save_pretrained(root / name)
    (root / "model" / "adapters").mkdir()
    shutil.copytree(root / "executive", root / "model" / "adapters" / "executive")  # found by name
    return root


def generate(capsys, *flags):
    code = cli.main(["generate", "--prompt", "The king", "--temperature", "0", "--max_new_tokens", "8",
                     "--device", "cpu", *map(str, flags)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_adapter_changes_the_text_and_use_base_gives_the_base_back(tiny, capsys):
    model = tiny / "model"
    code, base, err = generate(capsys, "--model_path", model)
    assert code == 0, err
    code, eli5, err = generate(capsys, "--model_path", model, "--adapter", tiny / "eli5")
    assert code == 0, err
    assert eli5.startswith("The king") and eli5 != base
    code, again, err = generate(capsys, "--model_path", model, "--adapter", f"kid={tiny / 'eli5'}",
                                "--adapter", "executive", "--use", "base", "--verbose")
    assert code == 0 and again == base, err
    assert "[adapters: kid, executive; using base]" in err
    code, executive, err = generate(capsys, "--model_path", model, "--adapter", "executive")  # model/adapters/
    assert code == 0 and executive not in (base, eli5), err
    code, named_use, err = generate(capsys, "--model_path", model, "--adapter", f"kid={tiny / 'eli5'}",
                                    "--adapter", "executive", "--use", "kid")
    assert code == 0 and named_use == eli5, err


def test_an_adapter_directory_as_the_model_streams_through_transformers(tiny, capsys):
    code, ours, err = generate(capsys, "--model_path", tiny / "model", "--adapter", tiny / "eli5")
    assert code == 0, err
    code, hf, err = generate(capsys, "--model_path", tiny / "eli5")  # transformers Llama + peft, hf streaming
    assert code == 0, err
    assert hf == ours
    code, base, err = generate(capsys, "--model_path", tiny / "eli5", "--use", "base")
    assert code == 0 and base == generate(capsys, "--model_path", tiny / "model")[1], err


def test_an_adapter_of_another_base_is_refused_naming_both(tiny, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    shutil.copytree(tiny / "eli5", foreign)
    config = json.loads((foreign / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "mistralai/Mistral-7B-v0.1"
    (foreign / "adapter_config.json").write_text(json.dumps(config))
    code, out, err = generate(capsys, "--model_path", tiny / "model", "--adapter", foreign)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and "Traceback" not in err
    assert "mistralai/Mistral-7B-v0.1" in lines[-1] and str(tiny / "model") in lines[-1]
    code, forced, err = generate(capsys, "--model_path", tiny / "model", "--adapter", foreign, "--any_adapter_base")
    assert code == 0 and forced == generate(capsys, "--model_path", tiny / "model", "--adapter", tiny / "eli5")[1]
    code, _, err = generate(capsys, "--model_path", tiny / "model", "--adapter", "pirate")
    assert code == 2 and "'pirate'" in err and str(tiny / "model" / "adapters" / "pirate") in err


@pytest.mark.slow
def test_a_folder_without_adapter_config_exits_2_with_one_line(tiny, tmp_path):
    (tmp_path / "not-an-adapter").mkdir()
    result = run_cli("generate", "--model_path", str(tiny / "model"), "--adapter", str(tmp_path / "not-an-adapter"),
                     "--prompt", "hi", "--device", "cpu", cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and "holds no adapter_config.json" in result.stderr
    assert str(tmp_path / "not-an-adapter") in result.stderr
