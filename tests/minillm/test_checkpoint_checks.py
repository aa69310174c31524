"""from_pretrained checks: devices, shapes against config.json, missing weights; config.json records the dtype."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from minillm import DecoderOnlyModel, EncoderDecoderModel, EncoderOnlyModel, load_pretrained
from minillm.devices import resolve_device

SMALL = {"vocab_size": 40, "d_model": 32, "num_heads": 2, "num_layers": 1, "max_seq_len": 16}
FAMILIES = [(DecoderOnlyModel, "decoder_only"), (EncoderOnlyModel, "encoder_only"),
            (EncoderDecoderModel, "encoder_decoder")]


def _saved(tmp_path, cls=DecoderOnlyModel, model_type="decoder_only", dtype=None):
    model = cls({"model_type": model_type, **SMALL})
    if dtype is not None:
        model = model.to(dtype)
    return model.save_pretrained(tmp_path / model_type)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match=r"device 'tpu9' is unknown; use one of auto, cpu"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' is not available"):
            resolve_device("cuda")


def test_load_pretrained_accepts_auto_and_rejects_unavailable_devices(tmp_path):
    path = _saved(tmp_path)
    model = load_pretrained(path, device="auto")
    assert next(model.parameters()).device.type == resolve_device("auto").type
    assert next(DecoderOnlyModel.from_pretrained(path, device="cpu").parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="device 'gpu' is unknown"):
        load_pretrained(path, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            DecoderOnlyModel.from_pretrained(path, device="cuda")


@pytest.mark.parametrize(("cls", "model_type"), FAMILIES)
def test_shape_mismatch_names_the_weights(tmp_path, cls, model_type):
    path = _saved(tmp_path, cls, model_type)
    config = json.loads((path / "config.json").read_text())
    config["vocab_size"] = 48  # edited by hand: no longer matches the weights
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"checkpoint \(40, 32\) vs config \(48, 32\)"):
        cls.from_pretrained(path)


def test_missing_weight_raises(tmp_path):
    path = _saved(tmp_path)
    state = load_file(str(path / "model.safetensors"))
    del state["model.norm.weight"]
    save_file(state, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model.norm.weight"):
        DecoderOnlyModel.from_pretrained(path)


@pytest.mark.parametrize(("cls", "model_type"), FAMILIES)
def test_config_records_the_weights_dtype(tmp_path, cls, model_type):
    path = _saved(tmp_path, cls, model_type, dtype=torch.bfloat16)
    assert json.loads((path / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(str(path / "model.safetensors")).values()} == {torch.bfloat16}
    assert json.loads((_saved(tmp_path / "f32", cls, model_type) / "config.json").read_text())["dtype"] == "float32"
