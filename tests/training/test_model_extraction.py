"""load_model_and_tokenizer / continue_training / extract_model_for_inference on a trained toy run."""

from __future__ import annotations

import pytest
import torch

from minillm import DecoderOnlyModel, load_pretrained
from training import Trainer, continue_training, extract_model_for_inference, load_model_and_tokenizer

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}


@pytest.fixture
def bpe():
    from tokenizers_bpe import BPETokenizer

    text = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs"] * 20
    return BPETokenizer(vocab_size=300, show_progress=False).train(text)


def _ids_data(tokenizer, n=16):
    ids = torch.tensor(tokenizer.encode("the quick brown fox jumps over the lazy dog pack my box")[:12])
    rows = ids.repeat(n, 1)
    return [{"input_ids": rows[i : i + 4], "labels": rows[i : i + 4]} for i in range(0, n, 4)]


@pytest.fixture
def run_dir(tmp_path, bpe):
    torch.manual_seed(0)
    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": bpe.vocab_size, "d_model": 32, "num_heads": 2,
                                  "num_layers": 2, "max_seq_len": 32})
    data = _ids_data(bpe)
    Trainer(model=model, train_dataloader=data, val_dataloader=data[:1], checkpoint_dir=tmp_path / "run",
            learning_rate=1e-2, tokenizer=bpe, **FAST).train(epochs=2)
    return tmp_path / "run"


def test_load_from_run_dir_picks_best_and_tokenizer(run_dir, bpe):
    model, tokenizer = load_model_and_tokenizer(run_dir)
    assert type(tokenizer).__name__ == "BPETokenizer" and tokenizer.encode("lazy dog") == bpe.encode("lazy dog")
    best = load_pretrained(run_dir / "best")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), best.state_dict().values()))
    with pytest.raises(ValueError, match="use_8bit"):
        load_model_and_tokenizer(run_dir, use_8bit=True)
    with pytest.raises(FileNotFoundError, match="holds no model"):
        load_model_and_tokenizer(run_dir / "metrics.jsonl")


def test_extract_for_inference_is_slim_and_opens_in_transformers(run_dir, tmp_path):
    out = extract_model_for_inference(run_dir, tmp_path / "slim")
    assert not (out / "trainer_state").exists() and (out / "tokenizer.json").is_file()
    ours = load_pretrained(out)
    transformers = pytest.importorskip("transformers")
    theirs = transformers.AutoModelForCausalLM.from_pretrained(str(out)).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids).logits, ours(ids).logits, rtol=1e-4, atol=1e-4)


def test_continue_training_and_vocabulary_mismatch(run_dir, tmp_path, bpe):
    from tokenizers_bpe import BPETokenizer

    data = _ids_data(bpe)
    result = continue_training(run_dir, data, data[:1], learning_rate=1e-3, epochs=1,
                               checkpoint_dir=tmp_path / "more", early_stopping_patience=None, **FAST)
    start = load_pretrained(run_dir / "best")
    assert result["global_step"] == 4 and (tmp_path / "more" / "final" / "tokenizer.json").is_file()
    assert not torch.equal(result["model"].lm_head.weight, start.lm_head.weight)
    other = BPETokenizer(vocab_size=280, show_progress=False).train(["some other text entirely"] * 5)
    with pytest.raises(ValueError, match=rf"{other.vocab_size}.*{bpe.vocab_size}"):
        continue_training(run_dir, data, None, epochs=1, checkpoint_dir=tmp_path / "x", tokenizer=other, **FAST)


def test_continue_training_takes_a_loaded_model_and_a_fresh_default_dir(run_dir, tmp_path, bpe, monkeypatch):
    import minillm
    from training import model_extraction

    model, _ = load_model_and_tokenizer(run_dir)

    def no_second_load(*args, **kwargs):
        raise AssertionError("continue_training(model=...) loaded the weights again")

    monkeypatch.setattr(minillm, "load_pretrained", no_second_load)
    monkeypatch.chdir(tmp_path)
    data = _ids_data(bpe)
    result = continue_training(run_dir, data, None, epochs=1, model=model, early_stopping_patience=None, **FAST)
    assert result["model"] is model and type(result["tokenizer"]).__name__ == "BPETokenizer"
    runs = sorted((tmp_path / "checkpoints").glob("continued-*"))
    assert len(runs) == 1 and (runs[0] / "final").is_dir()
    assert model_extraction.unique_run_dir(tmp_path / "checkpoints", "continued") != runs[0]  # never reused


def test_model_alias_resolves_in_every_mode(run_dir, tmp_path, monkeypatch):
    from training import model_extraction
    from training.model_extraction import resolve_model_path

    monkeypatch.setitem(model_extraction.MODEL_ALIASES, "smollm2", lambda: run_dir / "best")
    assert resolve_model_path("SmolLM2") == run_dir / "best"
    model, tokenizer = load_model_and_tokenizer("smollm2")
    assert model.config.model_type == "decoder_only"
    assert tokenizer is not None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smollm2").mkdir()  # a local folder of that name wins over the alias
    with pytest.raises(FileNotFoundError, match="holds no model"):
        resolve_model_path("smollm2")
