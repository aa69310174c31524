"""pipeline: the eight steps run in order on a tiny transformers Llama (QLoRA and full fine-tuning, two steps
each), write the report with held-out perplexity, and a second run skips every step; a step cut short is redone
and the steps after it run; bad --steps / --papers / --max_steps are one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

import main as cli
from tokenizers_bpe import BPETokenizer

from .cli_helpers import run_cli

LINES = ["Paxos lets processes agree on one value.", "Bitcoin timestamps transactions in a chain of work.",
         "Mammography screening rose with telephone counseling."]
BANK = [{"id": "a", "question": "What does Paxos do?", "answer": "It lets processes agree on one value.",
         "keywords": ["agree", "value"]},
        {"id": "b", "question": "Is screening higher with counseling?", "answer": "yes"}]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline-model")
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(LINES * 4)
    config = transformers.LlamaConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id,
                                      bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root / "model")
    tokenizer.save(root / "model")
    bank = root / "bank.json"
    bank.write_text(json.dumps(BANK))
    return root


def _pipeline(root, work, *extra):
    return ["pipeline", "--model", str(root / "model"), "--work_dir", str(work), "--questions",
            str(root / "bank.json"), "--fast", "--max_steps", "2", *extra]


def test_eight_steps_then_a_second_run_skips_them(tiny_llama, tmp_path, capsys):
    work = tmp_path / "work"
    assert cli.main(_pipeline(tiny_llama, work)) == 0
    out = capsys.readouterr().out
    progress = json.loads((work / "pipeline.json").read_text())
    assert list(progress) == ["baseline", "papers", "dataset", "qlora", "qlora_test", "full", "full_test", "report"]
    assert all(step["done"] for step in progress.values())
    assert (work / "qlora" / "best" / "adapter_config.json").is_file()
    assert len(list((work / "text").glob("*.md"))) == 200  # --fast: 200 of the shipped abstracts
    report = (work / "report" / "comparison.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| baseline", "| qlora", "| full"))]
    assert len(rows) == 3
    meta = json.loads((work / "results" / "full.meta.json").read_text())
    assert json.dumps(meta).count("perplexity") >= 1 and "python main.py compare" in out

    # a second run does nothing; a step whose record is gone (cut short) runs again, the others stay done
    assert cli.main(_pipeline(tiny_llama, work)) == 0
    again = capsys.readouterr().out
    assert again.count("done before") == 8 and "python main.py" not in again
    del progress["qlora_test"]
    (work / "pipeline.json").write_text(json.dumps(progress))
    assert cli.main(_pipeline(tiny_llama, work)) == 0
    captured = capsys.readouterr()
    third = captured.out + captured.err
    assert third.count("done before") == 7 and "--label qlora" in third
    assert "0 answered, 2 kept from before" in third  # the evaluation itself resumed: nothing asked twice


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--steps", "baseline,bake"], "unknown steps ['bake']"),
    (["--papers", "no/such/dir"], "is not a folder"),
    (["--max_steps", "0"], "--max_steps 0 is out of range"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, flags, fragment):
    result = run_cli("pipeline", "--work_dir", str(tmp_path / "w"), *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
