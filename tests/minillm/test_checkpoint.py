"""Directory format: sharded transformers checkpoints, unknown/missing weights, corrupt files, the registry."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from minillm import DecoderOnlyModel, load_pretrained

from .hf_reference import tiny_llama

pytest.importorskip("transformers")


def test_sharded_transformers_checkpoint_loads(tmp_path):
    hf = tiny_llama(num_kv_heads=2)
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="50KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ours = DecoderOnlyModel.from_pretrained(tmp_path / "sharded")
    ids = torch.randint(3, 128, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, hf(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


def test_load_pretrained_picks_the_family(tmp_path):
    tiny_llama().save_pretrained(tmp_path / "m")
    assert isinstance(load_pretrained(tmp_path / "m"), DecoderOnlyModel)


def _saved(tmp_path):
    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 40, "d_model": 32, "num_heads": 2,
                                  "num_layers": 1, "max_seq_len": 16})
    return model.save_pretrained(tmp_path / "m")


def test_unknown_and_missing_weights_are_listed(tmp_path):
    path = _saved(tmp_path)
    state = load_file(str(path / "model.safetensors"))
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # a buffer: ignored
    state["model.layers.0.extra.weight"] = torch.ones(2)
    del state["model.norm.weight"]
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"unknown weights \[model.layers.0.extra.weight\].*missing weights "
                                         r"\[model.norm.weight\]"):
        DecoderOnlyModel.from_pretrained(path)


def test_corrupt_files_give_clear_errors(tmp_path):
    path = _saved(tmp_path)
    (path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        DecoderOnlyModel.from_pretrained(path)
    (path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        DecoderOnlyModel.from_pretrained(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DecoderOnlyModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        DecoderOnlyModel.from_pretrained(tmp_path)


def test_save_is_atomic_and_replaces(tmp_path):
    path = _saved(tmp_path)
    model = DecoderOnlyModel.from_pretrained(path)
    with torch.no_grad():
        model.model.norm.weight.fill_(2.0)
    model.save_pretrained(path)
    assert torch.equal(load_file(str(path / "model.safetensors"))["model.norm.weight"], torch.full((32,), 2.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp directories left behind
    config = json.loads((path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["tie_word_embeddings"] is True


def test_mistral_window_saves_as_mistral(tmp_path):
    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 40, "d_model": 32, "num_heads": 2,
                                  "num_layers": 1, "max_seq_len": 16, "sliding_window": 4})
    model.save_pretrained(tmp_path / "w")
    assert json.loads((tmp_path / "w" / "config.json").read_text())["model_type"] == "mistral"
    assert DecoderOnlyModel.from_pretrained(tmp_path / "w").config.sliding_window == 4
