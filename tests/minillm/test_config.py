"""ModelConfig: derivation, validation, presets, JSON round trip, seed and transformers keys."""

from __future__ import annotations

import json

import pytest

from minillm import DecoderOnlyModel, ModelConfig
from minillm.config import PRESETS

SEED_DICT = {"model_type": "decoder_only", "vocab_size": 1000, "d_model": 128, "num_heads": 4, "num_layers": 2, "d_ff": 256,
                 "max_seq_len": 64, "dropout": 0.1}


def test_seed_dict_keys_are_accepted_and_derived_fields_filled():
    config = ModelConfig.from_dict(SEED_DICT)
    assert config.head_dim == 32 and config.num_kv_heads == 4 and config.d_ff == 256
    assert config.hidden_act == "silu"


def test_d_ff_default_for_swiglu_is_a_multiple_of_64():
    assert ModelConfig(d_model=192).d_ff == 512


def test_indivisible_heads_error_quotes_values():
    with pytest.raises(ValueError, match=r"d_model \(100\) must be divisible by num_heads \(3\)"):
        ModelConfig(d_model=100, num_heads=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 4, "num_kv_heads": 3}, "multiple of num_kv_heads"),
        ({"vocab_size": 0}, "vocab_size must be a positive integer"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"model_type": "gpt"}, "model_type 'gpt' is unknown"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "rope_scaling type 'yarn'"),
    ],
)
def test_invalid_values_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="unknown config keys: colour, n_wings"):
        ModelConfig.from_dict({**SEED_DICT, "colour": "red", "n_wings": 2})


def test_json_round_trip(tmp_path):
    config = ModelConfig.from_preset("small", vocab_size=4096, rope_scaling=None)
    config.to_json(tmp_path / "c.json")
    assert ModelConfig.from_json(tmp_path / "c.json") == config


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_build(name):
    config = ModelConfig.from_preset(name)
    assert config.model_type in ("decoder_only", "encoder_only", "encoder_decoder")


def test_transformers5_llama_config_fields():
    transformers = pytest.importorskip("transformers")
    hf = transformers.LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, rope_parameters={"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0,
                                                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                "original_max_position_embeddings": 8192},
    )
    config = ModelConfig.from_dict(json.loads(hf.to_json_string()), strict=False)
    assert (config.d_model, config.num_heads, config.num_kv_heads, config.num_layers) == (64, 8, 2, 3)
    assert config.rope_theta == 5e5 and config.rope_scaling["rope_type"] == "llama3"
    assert config.model_type == "decoder_only"


def test_model_accepts_seed_dict():
    model = DecoderOnlyModel(SEED_DICT)
    assert model.config.d_model == 128
    with pytest.raises(ValueError, match="needs model_type 'decoder_only'"):
        DecoderOnlyModel({**SEED_DICT, "model_type": "encoder_only"})


def test_to_json_is_atomic_and_round_trips(tmp_path, monkeypatch):
    import minillm.atomic

    config = ModelConfig(model_type="encoder_decoder", vocab_size=64, d_model=32, num_heads=2, num_layers=2,
                         num_decoder_layers=3)
    path = tmp_path / "config.json"
    config.to_json(path)
    assert ModelConfig.from_json(path).num_decoder_layers == 3  # a field name needs no alias
    assert ModelConfig.from_json(path) == config

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(minillm.atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        ModelConfig(model_type="decoder_only", vocab_size=8, d_model=32, num_heads=2, num_layers=1).to_json(path)
    assert ModelConfig.from_json(path) == config
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
