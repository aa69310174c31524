"""The original Mini LLM docs' code runs as users copy it (imports mapped by the README's table)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import original_snippets as S

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "training" / "sample_data" / "tinyshakespeare.txt"
TABLE_ROW = re.compile(r"^\|\s*`(from [\w.]+ import [\w, ]+)`\s*\|\s*`(from [\w.]+ import [\w, ]+)`\s*\|")


def import_table() -> dict[str, str]:
    """The README's "From the original docs" rows: documented import -> ours (rows naming no change excluded)."""
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = TABLE_ROW.match(line)
        if match and match.group(1) != match.group(2):
            rows[match.group(1)] = match.group(2)
    return rows


def as_users_run_it(snippet: str) -> str:
    """The snippet with the README's import mapping applied and the CPU device its comments offer."""
    for documented, ours in import_table().items():
        snippet = snippet.replace(documented, ours)
    return snippet.replace('device="cuda"', 'device="cpu"')


def test_readme_table_maps_every_documented_import_we_cannot_provide():
    table = import_table()
    for documented in ("from models.encoder_model import EncoderOnlyModel",
                       "from tokenizers.bpe_tokenizer import BPETokenizer"):
        assert documented in table
    for ours in table.values():  # every mapped import works
        module, names = ours.removeprefix("from ").split(" import ")
        imported = importlib.import_module(module)
        assert all(hasattr(imported, name.strip()) for name in names.split(","))


def _paragraph_slice(text: str, start: int, size: int) -> str:
    begin = text.index("\n\n", start) + 2
    end = text.index("\n\n", begin + size)
    return text[begin:end] + "\n"


@pytest.mark.slow
def test_documented_snippets_run_as_written(tmp_path):
    text = SAMPLE.read_text()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.txt").write_text(_paragraph_slice(text, 0, 40_000))
    (tmp_path / "data" / "new_data.txt").write_text(_paragraph_slice(text, 200_000, 40_000))
    script = "\n".join([
        "import json, torch",
        "torch.manual_seed(0)",
        "input_ids = torch.randint(0, 10000, (2, 12)); attention_mask = torch.ones(2, 12, dtype=torch.long)",
        as_users_run_it(S.ENCODER_USAGE),
        "report = {'hidden': list(hidden_states.shape), 'mlm': list(mlm_logits.shape)}",
        as_users_run_it(S.TRAIN_ENCODER),
        "report['encoder'] = {k: results[k] for k in ('early_stopped', 'epochs_completed', 'best_val_loss')}",
        "report['encoder']['first_val_loss'] = results['history'][0]['val_loss']",
        as_users_run_it(S.EARLY_STOPPING),
        "report['early'] = {k: results[k] for k in ('early_stopped', 'epochs_completed', 'best_val_loss')}",
        as_users_run_it(S.LOAD_MODEL),
        ("report['loaded'] = [type(model).__name__, type(tokenizer).__name__, tokenizer.mask_token_id,"
         " tokenizer.pad_token_id]"),
        as_users_run_it(S.CONTINUE_TRAINING),
        "report['continued'] = results['global_step']",
        as_users_run_it(S.EXTRACT),
        "report['extracted'] = str(extracted_path)",
        as_users_run_it(S.FINE_TUNE),
        "report['fine_tuned'] = {k: results[k] for k in ('global_step', 'best_val_loss')}",
        "print('REPORT ' + json.dumps(report))",
    ])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=1500, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.split("REPORT ", 1)[1])
    assert report["hidden"] == [2, 12, 256] and report["mlm"] == [2, 12, 10000]
    encoder = report["encoder"]
    assert encoder["best_val_loss"] < encoder["first_val_loss"] - 0.5  # the masked-LM loss falls
    assert report["early"]["epochs_completed"] >= 1
    assert report["loaded"][:2] == ["EncoderOnlyModel", "BPETokenizer"]
    assert report["loaded"][2] is not None and report["loaded"][3] is not None  # <mask> and <pad> survived
    assert report["continued"] >= 1
    assert (tmp_path / "models" / "inference_model" / "config.json").is_file()
    assert not (tmp_path / "models" / "inference_model" / "trainer_state").exists()
    assert report["fine_tuned"]["global_step"] >= 1
    for run in ("checkpoints/encoder_model", "checkpoints", "checkpoints/continued", "checkpoints/fine_tuned"):
        assert (tmp_path / run / "best" / "trainer_state" / "COMPLETE").is_file(), run


def _tiny_decoder_run(folder: Path) -> None:
    """A small random decoder and its BPE tokenizer saved where the Trainer puts the best model (``best/``)."""
    import torch

    import minillm
    from tokenizers_bpe import BPETokenizer

    lines = [json.loads(line)["text"] for line in (REPO / "rag" / "sample_data" / "pubmedqa_dev.jsonl").open()][:40]
    tokenizer = BPETokenizer(vocab_size=600, show_progress=False)
    tokenizer.train(lines)
    config = minillm.ModelConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, d_model=64, num_heads=4,
                                             num_layers=2, max_seq_len=1024, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    minillm.DecoderOnlyModel(config).save_pretrained(folder, tokenizer=tokenizer)


@pytest.mark.slow
def test_documented_rag_blocks_run_as_written(tmp_path):
    (tmp_path / "data").mkdir()
    records = [json.loads(line) for line in (REPO / "rag" / "sample_data" / "pubmedqa_dev.jsonl").open()][:12]
    (tmp_path / "data" / "knowledge_base.txt").write_text("\n\n".join(r["text"] for r in records) + "\n")
    _tiny_decoder_run(tmp_path / "checkpoints" / "best")
    script = "\n".join([
        "import json, torch",
        "torch.manual_seed(0)",
        as_users_run_it(S.RAG_USAGE),
        "report = {'first': [type(response).__name__, str(response), len(response.sources)]}",
        as_users_run_it(S.RAG_WITH_TRAINED_MODEL),
        "report['second'] = {'chunks': len(chunks), 'sources': [s.number for s in response.sources],",
        "                    'texts': [s.text for s in response.sources], 'answer': response.text,",
        "                    'prompt': response.prompt}",
        "print('REPORT ' + json.dumps(report))",
    ])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    printed, report_line = done.stdout.split("REPORT ", 1)
    report = json.loads(report_line)
    assert report["first"][0] == "RAGAnswer" and report["first"][2] == 0  # the placeholder text gives no chunks
    second = report["second"]
    assert second["chunks"] >= 12 and second["sources"] == [1, 2, 3]
    knowledge = (tmp_path / "data" / "knowledge_base.txt").read_text()
    assert all(text in knowledge for text in second["texts"])
    assert "Question: What is machine learning?" in second["prompt"] and "[3] " in second["prompt"]
    shown = second["answer"].replace("\r\n", "\n").replace("\r", "\n").strip()  # as text-mode stdout reads it
    assert printed.strip().endswith(shown)  # print(response) prints the answer
    assert (tmp_path / "data" / "document_store.pkl").exists()
