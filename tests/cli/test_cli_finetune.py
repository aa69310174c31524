"""`main.py train --model ... --qlora/--lora` and `continue` on an adapter: the fine-tuning path of the CLI, on a
tiny random transformers Llama (seconds, no download). One run serves several checks."""

from __future__ import annotations

import json

import pytest
import torch

import main as cli

from .cli_helpers import run_cli
from .tiny_hf import chat_records, instruction_records, make_tiny_llama, write_json, write_jsonl

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
FAST = ["--warmup_steps", "0", "--lr", "3e-3", "--lr_scheduler", "constant", "--gradient_accumulation_steps", "1",
        "--batch_size", "4", "--max_seq_len", "64"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    make_tiny_llama(root / "tiny")
    write_json(root / "train.json", instruction_records(48))
    write_json(root / "eval.json", instruction_records(12, seed=5))
    return root


@pytest.fixture(scope="module")
def qlora_run(work):
    result = run_cli("train", "--model", "tiny", "--qlora", "--train-data", "train.json", "--eval-data", "eval.json",
                     "--max_steps", "8", "--eval_steps", "4", "--output-dir", "qlora", "--lora_r", "4", *FAST,
                     cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work / "qlora", result


def test_qlora_run_trains_only_lora_and_writes_slim_adapter_folders(qlora_run, work):
    run, result = qlora_run
    assert "tiny (LlamaForCausalLM), qlora:" in result.stderr and "padded rows of up to 64 tokens" in result.stderr
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [4, 8]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]  # held-out loss falls
    for name in ("best", "final"):  # the adapter and the tokenizer; no optimizer, no base weights
        files = {p.name for p in (run / name).iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= files
        assert "model.safetensors" not in files
        assert {p.name for p in (run / name / "trainer_state").iterdir()} == {"state.json", "COMPLETE"}
    step = {p.name for p in (run / "checkpoint-8" / "trainer_state").iterdir()}
    assert {"optimizer.safetensors", "trainable.safetensors", "rng.safetensors"} <= step
    note = json.loads((run / "final" / "minillm_adapter.json").read_text())
    assert note["base_model"] == str((work / "tiny").resolve()) and note["quantization"] == "nf4-double"


def test_seed_peft_call_loads_our_final_folder(qlora_run, work):
    """The seed's `PeftModel.from_pretrained(base, "output/.../final")` on our final/ gives the model we reload."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from minillm.hf.quantization import keep_training_layout
    from training import load_model_and_tokenizer

    run, _ = qlora_run
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(work / "tiny", quantization_config=quant, dtype=torch.float32,
                                                device_map={"": "cpu"})
    seed_model = peft.PeftModel.from_pretrained(base, str(run / "final")).eval()
    keep_training_layout(seed_model)  # bitsandbytes' CPU inference repacking alone moves logits by ~3e-3
    ours, tokenizer = load_model_and_tokenizer(run / "final", trainable=False, dtype="float32")
    ids = torch.tensor([tokenizer.encode("Does the gene study show an effect?")])
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(input_ids=ids).logits, seed_model(input_ids=ids).logits)
        plain = AutoModelForCausalLM.from_pretrained(work / "tiny", dtype=torch.float32)(input_ids=ids).logits
    assert (plain - seed_model(input_ids=ids).logits).abs().max() > 1e-3  # the adapter changed the model


def test_continue_reloads_the_adapter_trainable_and_trains_it(qlora_run, work):
    run, _ = qlora_run
    write_json(work / "more.json", instruction_records(24, seed=9))
    result = run_cli("continue", "--model_path", str(run / "best"), "--data_path", "more.json", "--max_steps", "2",
                     "--batch_size", "4", "--lr", "3e-3", "--checkpoint_dir", "continued", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "M of " in result.stderr and "parameters trainable" in result.stderr
    from safetensors.torch import load_file

    before = load_file(str(run / "best" / "adapter_model.safetensors"))
    after = load_file(str(work / "continued" / "final" / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)


def test_lora_on_chat_data_and_full_finetune_on_text(work):
    write_jsonl(work / "chat.jsonl", chat_records(40))
    lora = run_cli("train", "--model", "tiny", "--lora", "--train_data", "chat.jsonl", "--max_steps", "2",
                   "--eval_steps", "2", "--checkpoint_dir", "lora-chat", *FAST, cwd=work)
    assert lora.returncode == 0, lora.stderr[-3000:]
    assert ", lora:" in lora.stderr
    (work / "notes.txt").write_text("\n\n".join(r["input"] + " " + r["output"] for r in instruction_records(60)))
    full = run_cli("train", "--model", "tiny", "--train_data", "notes.txt", "--max_steps", "2", "--eval_steps", "2",
                   "--checkpoint_dir", "full-text", *FAST, cwd=work)
    assert full.returncode == 0, full.stderr[-3000:]
    assert ", full:" in full.stderr
    assert transformers.AutoModelForCausalLM.from_pretrained(work / "full-text" / "final") is not None


@pytest.mark.parametrize(("flags", "expected"), [
    (["--model", "no-such-model", "--qlora"], "valid aliases: mistral-7b"),
    (["--qlora"], "fine-tuning needs the base model: --model"),
    (["--model", "tiny", "--preset", "tiny"], "not a fine-tuning preset"),
    (["--model", "tiny", "--d_model", "64"], "--d_model sets the size of a model trained from scratch"),
    (["--model", "tiny", "--qlora", "--lora"], "exclude each other"),
    (["--model", "tiny", "--lora", "--compile"], "--compile applies to training our models from scratch"),
    (["--model", "mistral-7b", "--qlora"], "HF_HOME"),
])
def test_bad_finetune_flags_are_one_line_and_leave_nothing(work, flags, expected, monkeypatch, capsys):
    monkeypatch.chdir(work)
    code = cli.main(["train", *flags, "--train_data", "train.json", "--checkpoint_dir", "refused"])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], err[-2000:]
    assert not (work / "refused").exists()


def test_environment_and_dotenv_override_the_preset_and_flags_override_both(work, tmp_path):
    from minillm.hf.presets import get_preset
    from training.finetune_run import finetune_layer

    first = {"preset": "fast_prototype"}
    layer = finetune_layer(first, environ={"QLORA_EPOCHS": "1", "MAX_SEQ_LENGTH": "96"}, dotenv=None)
    assert layer["epochs"] == 1 and layer["max_seq_len"] == 96 and layer["qlora"]
    assert layer["lora_r"] == get_preset("fast_prototype").lora_r == 8 and layer["lr"] == 2e-4
    (tmp_path / ".env").write_text("QLORA_BATCH_SIZE=2\nFULL_LR=1e-5\n")
    layer = finetune_layer({"model": "x", "qlora": True}, environ={}, dotenv=str(tmp_path / ".env"))
    assert layer["batch_size"] == 2 and layer["lr"] == 2e-4  # FULL_* applies to full fine-tuning only
    (work / ".env").write_text("QLORA_BATCH_SIZE=two\n")
    try:
        result = run_cli("train", "--model", "tiny", "--qlora", "--train_data", "train.json", cwd=work)
    finally:
        (work / ".env").unlink()
    assert result.returncode == 2 and "QLORA_BATCH_SIZE='two'" in result.stderr and "Traceback" not in result.stderr
