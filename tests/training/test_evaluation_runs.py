"""evaluate + compare end to end on tiny models built here: two labelled runs of one of our decoders, a resume
after a kill, the sidecar's perplexity, the comparison's Markdown rows and PNG; and a tiny transformers Llama
with a peft adapter over it (``--adapter``), which changes the perplexity the results record."""

from __future__ import annotations

import json
import math
import struct

import peft
import pytest
import torch
import transformers

import main as cli
from minillm import DecoderOnlyModel
from tests.cli.tiny_hf import make_tiny_llama
from tokenizers_bpe import BPETokenizer
from training.evaluation.chart import SIZE
from training.evaluation.perplexity import perplexity, read_held_out
from training.evaluation.question_bank import load_bank
from training.evaluation.results import SEED_FIELDS, meta_path
from training.evaluation.scoring import score_response
from training.model_extraction import load_model_and_tokenizer

LINES = ["The immune system protects the body from infection.", "Autoimmune disease: the body attacks itself.",
         "Type 1 diabetes destroys the beta cells of the pancreas.", "Is a gluten-free diet the treatment? Yes."]
BANK = [
    {"id": "q1", "category": "basics", "difficulty": "easy", "question": "What does the immune system do?",
     "answer": "It protects the body from infection.", "keywords": ["protects", "infection"]},
    {"id": "q2", "category": "treatment", "question": "Is a gluten-free diet the treatment for celiac disease?",
     "answer": "yes"},
    {"id": "q3", "question": "What does type 1 diabetes destroy?", "keywords": ["beta cells"]},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two of our random decoders (seeds 0 and 1) sharing a small BPE tokenizer, a bank, held-out text."""
    root = tmp_path_factory.mktemp("evaluation")
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(LINES * 4)
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": tokenizer.vocab_size, "d_model": 32,
                                  "num_heads": 2, "num_layers": 1, "max_seq_len": 64})
        model.save_pretrained(root / f"model{seed}")
        tokenizer.save(root / f"model{seed}")
    (root / "bank.json").write_text(json.dumps(BANK))
    (root / "val.txt").write_text(" ".join(LINES * 3))
    return root


def evaluate(capsys, tiny, *flags):
    code = cli.main(["evaluate", "--questions", str(tiny / "bank.json"), "--max_new_tokens", "5", "--device", "cpu",
                     "--no_progress", "--chat", "off", *map(str, flags)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read(path):
    return json.loads(path.read_text())


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_two_labels_resume_and_compare(tiny, tmp_path, capsys):
    base, tuned = tmp_path / "results" / "base.json", tmp_path / "results" / "tuned.json"
    code, out, err = evaluate(capsys, tiny, "--model_path", tiny / "model0", "--label", "base", "--output", base,
                              "--perplexity_data", tiny / "val.txt")
    assert code == 0, err
    assert "base: 3 questions (3 answered, 0 kept" in out
    items = read(base)
    bank = load_bank(tiny / "bank.json")
    assert [item["id"] for item in items] == ["q1", "q2", "q3"]
    for item, question in zip(items, bank.questions, strict=True):
        assert list(item)[:len(SEED_FIELDS)] == list(SEED_FIELDS)
        assert (item["label"], item["model"], item["adapter"]) == ("base", str(tiny / "model0"), None)
        assert item["scores"] == score_response(question, item["response"]) and item["time_seconds"] > 0
    assert set(items[0]["scores"]) == {"rouge_l", "keyword_coverage"} and set(items[1]["scores"]) == {"accuracy"}
    meta = read(meta_path(base))
    model, tokenizer = load_model_and_tokenizer(tiny / "model0", device="cpu")
    direct = perplexity(model, tokenizer, read_held_out(tiny / "val.txt"))
    assert meta["perplexity"]["perplexity"] == pytest.approx(direct.perplexity, rel=1e-6)
    assert meta["label"] == "base" and meta["bank"]["count"] == 3 and meta["aggregate"]["n"] == 3

    base.write_text(json.dumps(items[:1]))  # killed after the first answer
    code, out, err = evaluate(capsys, tiny, "--model_path", tiny / "model0", "--label", "base", "--output", base,
                              "--perplexity_data", tiny / "val.txt")
    assert code == 0, err
    assert "(2 answered, 1 kept" in out
    resumed = read(base)
    assert resumed[0] == items[0]  # kept as it was: same timestamp and time
    assert [(i["id"], i["response"]) for i in resumed] == [(i["id"], i["response"]) for i in items]  # greedy
    before = base.read_bytes()
    code, out, _ = evaluate(capsys, tiny, "--model_path", tiny / "model0", "--label", "base", "--output", base)
    assert code == 0 and "(0 answered, 3 kept" in out and base.read_bytes() == before
    assert read(meta_path(base))["perplexity"] == meta["perplexity"]  # kept from the earlier run

    code, out, err = evaluate(capsys, tiny, "--model_path", tiny / "model1", "--label", "tuned", "--output", tuned,
                              "--perplexity_data", tiny / "val.txt")
    assert code == 0, err
    code, _, err = evaluate(capsys, tiny, "--model_path", tiny / "model1", "--label", "tuned", "--output", base)
    assert code == 2 and "another run (label 'base'" in err and len(err.strip().splitlines()) == 1

    report_dir = tmp_path / "report"
    assert cli.main(["compare", str(base), str(tuned), "--output_dir", str(report_dir)]) == 0
    printed = capsys.readouterr().out
    markdown = (report_dir / "comparison.md").read_text()
    assert png_size(report_dir / "comparison.png") == SIZE
    for path, label in ((base, "base"), (tuned, "tuned")):
        results, ppl = read(path), read(meta_path(path))["perplexity"]["perplexity"]
        rouge = results[0]["scores"]["rouge_l"]  # the only item with a reference answer
        coverage = (results[0]["scores"]["keyword_coverage"] + results[2]["scores"]["keyword_coverage"]) / 2
        seconds = [item["time_seconds"] for item in results]
        row = next(line for line in markdown.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip().strip("*") for cell in row.strip("|").split("|")]
        assert cells == [label, results[0]["model"], "-", "3", f"{results[1]['scores']['accuracy']:.3f}",
                         f"{rouge:.3f}", f"{coverage:.3f}", f"{ppl:.2f}", f"{sum(seconds) / 3:.2f}",
                         f"{sum(seconds):.2f}"]
        assert row in printed
    lower = min(read(meta_path(p))["perplexity"]["perplexity"] for p in (base, tuned))
    assert f"**{lower:.2f}**" in markdown  # the best perplexity is bold
    assert "| q2 | treatment | Is a gluten-free diet the treatment for celiac disease? |" in markdown


def test_no_resume_starts_over_under_another_label(tiny, tmp_path, capsys):
    output = tmp_path / "run.json"
    assert evaluate(capsys, tiny, "--model_path", tiny / "model0", "--label", "first", "--output", output)[0] == 0
    code, out, err = evaluate(capsys, tiny, "--model_path", tiny / "model0", "--label", "second", "--output",
                              output, "--no_resume")
    assert code == 0 and "(3 answered, 0 kept" in out, err
    assert {item["label"] for item in read(output)} == {"second"}
    assert read(meta_path(output))["label"] == "second" and read(meta_path(output))["perplexity"] is None


@pytest.fixture(scope="module")
def hf_with_adapter(tmp_path_factory):
    """A tiny transformers Llama (tests/cli/tiny_hf.py) and a random LoRA adapter saved over it."""
    root = tmp_path_factory.mktemp("evaluation-hf")
    make_tiny_llama(root / "hf")
    model = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(root / "hf"),
                                peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                target_modules=["q_proj", "v_proj", "down_proj"]))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(root / "adapter")
    return root


def test_a_transformers_model_with_a_peft_adapter(tiny, hf_with_adapter, tmp_path, capsys):
    root = hf_with_adapter
    runs = {"hf": [root / "hf"], "lora": [root / "hf", "--adapter", root / "adapter", "--chat", "on"],
            "peft": [root / "adapter"]}  # an adapter directory alone: transformers + peft
    for label, extra in runs.items():
        code, _, err = evaluate(capsys, tiny, "--label", label, "--output", tmp_path / f"{label}.json",
                                  "--perplexity_data", tiny / "val.txt", "--model_path", *extra)
        assert code == 0, err
    lora = read(tmp_path / "lora.json")
    assert {item["adapter"] for item in lora} == {str(root / "adapter")}
    assert {item["adapter"] for item in read(tmp_path / "hf.json")} == {None}
    figures = {label: read(meta_path(tmp_path / f"{label}.json"))["perplexity"]["perplexity"] for label in runs}
    assert all(math.isfinite(v) for v in figures.values()) and figures["hf"] != pytest.approx(figures["lora"])
    assert figures["peft"] == pytest.approx(figures["lora"], rel=1e-4)  # the same weights through transformers
    assert cli.main(["compare", str(tmp_path / "hf.json"), str(tmp_path / "lora.json")]) == 0
    markdown = (tmp_path / "comparison.md").read_text()  # next to the first file by default
    assert f"| lora | {root / 'hf'} | {root / 'adapter'} | 3 |" in markdown
    assert png_size(tmp_path / "comparison.png") == SIZE
