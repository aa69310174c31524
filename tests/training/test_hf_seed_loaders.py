"""The seed's one-call loaders and the bridge's refusals: load_mistral_7b(use_qlora=True) from a local Hugging Face
cache (a tiny random Mistral stands in for the 7B weights), QLoRA without bitsandbytes, and a model family that
has no 4-bit path."""

from __future__ import annotations

import sys

import pytest
import torch

import minillm
from minillm.errors import InputError, MissingDependencyError
from training import load_model_and_tokenizer

transformers = pytest.importorskip("transformers")
bnb = pytest.importorskip("bitsandbytes")
peft = pytest.importorskip("peft")


def _fake_hub_cache(root, repo_id: str, model_dir) -> None:
    """Lay ``model_dir`` out as the Hugging Face cache does: models--ORG--NAME/{refs/main, snapshots/HASH/}."""
    import shutil

    commit = "0" * 40
    repo = root / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_load_mistral_7b_with_qlora_from_the_local_cache(tmp_path, monkeypatch):
    from minillm.hf import load_mistral_7b
    from tokenizers_bpe import BPETokenizer

    config = transformers.MistralConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    source = tmp_path / "mistral-tiny"
    transformers.MistralForCausalLM(config).save_pretrained(source)
    tokenizer = BPETokenizer(vocab_size=300)
    tokenizer.train(["the cell and the gene of the protein"] * 20)
    tokenizer.save(source)
    _fake_hub_cache(tmp_path / "hf", "mistralai/Mistral-7B-v0.1", source)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    model, tok = load_mistral_7b(use_qlora=True)
    assert isinstance(model, peft.PeftModel)
    assert type(model.get_base_model()).__name__ == "MistralForCausalLM"
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7 and layers[0].weight.quant_state.nested  # NF4 with double quantization
    assert layers[0].weight.quant_state.quant_type == "nf4"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    ids = torch.tensor([tok.encode("the cell")])
    assert model(input_ids=ids, labels=ids).loss.isfinite()


def test_load_llama3_8b_without_local_weights_says_how_to_provide_them(tmp_path, monkeypatch):
    from minillm.hf import load_llama3_8b

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(InputError, match="llama-3-8b .meta-llama/Meta-Llama-3-8B. is not on this machine") as info:
        load_llama3_8b(use_qlora=True)
    assert "HF_HOME" in str(info.value) and "\n" not in str(info.value)


def test_qlora_without_bitsandbytes_says_how_to_install_it(tmp_path, monkeypatch):
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "tiny")
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"needs bitsandbytes: pip install"):
        load_model_and_tokenizer(tmp_path / "tiny", use_qlora=True)


def test_qlora_on_an_encoder_is_refused_in_one_line(tmp_path):
    config = minillm.ModelConfig.from_preset("bert-tiny", model_type="encoder_only", vocab_size=64, max_seq_len=32)
    minillm.EncoderOnlyModel(config).save_pretrained(tmp_path / "encoder")
    with pytest.raises(InputError, match="--qlora needs a decoder .Llama-family. model; .* encoder_only model"):
        load_model_and_tokenizer(tmp_path / "encoder", use_qlora=True)
