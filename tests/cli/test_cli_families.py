"""The other model families and the JSONL data formats through the CLI, in subprocesses.

``train`` an encoder (BERT family, masked LM) and an encoder-decoder (T5 family, span corruption) on plain text,
``extract`` both and open them with minillm and transformers (same outputs), ``continue`` the encoder-decoder, and
``train`` the decoder on chat, instruction and ``{"text"}`` JSONL and the encoder-decoder on source/target pairs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from .cli_helpers import TINY_MODEL, run_cli, write_corpus

pytestmark = pytest.mark.slow
STEPS = ["--max_steps", "6", "--eval_steps", "3"]


def _summary(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("{")))


def _train(work: Path, data: Path, run: str, *extra: str) -> dict:
    result = run_cli(
        "train", "--data_path", str(data), "--checkpoint_dir", run, *TINY_MODEL, *STEPS, *extra, cwd=work
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = _summary(result.stdout)
    assert summary["global_step"] == 6 and math.isfinite(summary["best_val_loss"]), summary
    assert summary["best_val_loss"] < 6.0, summary  # ln(300) = 5.7 for a random model
    return summary


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("families")
    write_corpus(work / "train.txt")
    return work


@pytest.fixture(scope="module")
def encoder_run(work) -> Path:
    _train(work, work / "train.txt", "enc", "--model_type", "encoder_only")
    return work / "enc"


@pytest.fixture(scope="module")
def t5_run(work) -> Path:
    _train(work, work / "train.txt", "t5", "--model_type", "encoder_decoder")
    return work / "t5"


def _extract(work: Path, run: Path, name: str) -> Path:
    result = run_cli("extract", "--model_path", run.name, "--output_path", name, cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    slim = work / name
    assert (slim / "model.safetensors").is_file() and (slim / "tokenizer.json").is_file()
    assert not (slim / "trainer_state").exists()
    return slim


def test_encoder_only_extract_opens_in_minillm_and_transformers(work, encoder_run):
    transformers = pytest.importorskip("transformers")
    from minillm import EncoderOnlyModel, load_pretrained

    slim = _extract(work, encoder_run, "enc_slim")
    ours = load_pretrained(slim).eval()
    assert isinstance(ours, EncoderOnlyModel)
    ids = torch.randint(5, 300, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    with torch.no_grad():
        expected = ours.predict_mlm(ids, mask)
        for cls in (transformers.BertForMaskedLM, transformers.AutoModelForMaskedLM):
            hf = cls.from_pretrained(slim).eval()
            got = hf(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)


def test_encoder_decoder_trains_on_plain_text_and_extract_opens_in_transformers(work, t5_run):
    transformers = pytest.importorskip("transformers")
    from minillm import EncoderDecoderModel, load_pretrained
    from tokenizers_bpe import BPETokenizer

    tokenizer = BPETokenizer.load(t5_run / "tokenizer")
    assert (
        tokenizer.token_to_id("<extra_id_0>") is not None
        and tokenizer.token_to_id("<extra_id_31>") is not None
    )
    slim = _extract(work, t5_run, "t5_slim")
    ours = load_pretrained(slim).eval()
    assert isinstance(ours, EncoderDecoderModel)
    hf = transformers.T5ForConditionalGeneration.from_pretrained(slim).eval()
    ids = torch.randint(40, 300, (2, 12))
    decoder_ids = torch.cat([torch.full((2, 1), tokenizer.pad_token_id), torch.randint(40, 300, (2, 5))], 1)
    with torch.no_grad():
        expected = ours(input_ids=ids, decoder_input_ids=decoder_ids).logits
        got = hf(input_ids=ids, decoder_input_ids=decoder_ids).logits
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        ours_out = ours.generate(ids, max_new_tokens=6, do_sample=False)
        start = tokenizer.pad_token_id
        hf_out = hf.generate(ids, max_new_tokens=6, do_sample=False)  # start token from generation_config.json
    assert ours_out.tolist() == hf_out.tolist()
    assert (ours_out[:, 0] == start).all()


def test_extracted_t5_generation_config_names_the_decoder_start(work, t5_run):
    slim = work / "t5_slim" if (work / "t5_slim").is_dir() else _extract(work, t5_run, "t5_slim")
    config = json.loads((slim / "config.json").read_text())
    generation = json.loads((slim / "generation_config.json").read_text())
    assert generation.get("decoder_start_token_id") == config["decoder_start_token_id"]


def test_continue_the_encoder_decoder(work, t5_run):
    more = write_corpus(work / "more.txt", paragraphs=80)
    result = run_cli(
        "continue",
        "--model_path",
        "t5/best",
        "--data_path",
        str(more),
        "--checkpoint_dir",
        "t5_more",
        "--max_steps",
        "3",
        "--batch_size",
        "4",
        "--max_seq_len",
        "32",
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _summary(result.stdout)["global_step"] == 3
    config = json.loads((work / "t5_more" / "final" / "config.json").read_text())
    assert config["model_type"] == "t5"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


NUMBERS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
FORMATS = {
    "chat": lambda i: {
        "messages": [
            {"role": "system", "content": "You count."},
            {"role": "user", "content": f"What comes after {NUMBERS[i % 9]}?"},
            {"role": "assistant", "content": f"{NUMBERS[i % 9 + 1]} comes after {NUMBERS[i % 9]}."},
        ]
    },
    "instruction": lambda i: {
        "instruction": "Name the next number.",
        "input": NUMBERS[i % 9],
        "output": NUMBERS[i % 9 + 1],
    },
    "text": lambda i: {"text": f"The number after {NUMBERS[i % 9]} is {NUMBERS[i % 9 + 1]}; paragraph {i}."},
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_decoder_trains_on_jsonl_formats(work, kind):
    data = _jsonl(work / f"{kind}.jsonl", [FORMATS[kind](i) for i in range(60)])
    _train(work, data, f"dec_{kind}")
    assert (work / f"dec_{kind}" / "final" / "model.safetensors").is_file()


def test_encoder_decoder_trains_on_source_target_pairs(work):
    rows = [{"source": f"next: {NUMBERS[i % 9]}", "target": NUMBERS[i % 9 + 1]} for i in range(60)]
    data = _jsonl(work / "pairs.jsonl", rows)
    _train(work, data, "t5_pairs", "--model_type", "encoder_decoder")
    config = json.loads((work / "t5_pairs" / "final" / "config.json").read_text())
    assert config["model_type"] == "t5"
