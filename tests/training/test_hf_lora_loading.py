"""load_model_and_tokenizer with the HF bridge: QLoRA/LoRA through transformers + bitsandbytes + peft on a tiny
random Llama saved by transformers, peft on our own decoder, adapter directories, offline hub aliases."""

from __future__ import annotations

import pytest
import torch

from minillm import DecoderOnlyModel
from minillm.errors import InputError
from training import load_model_and_tokenizer

transformers = pytest.importorskip("transformers")
bnb = pytest.importorskip("bitsandbytes")
peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-llama")
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    return directory


def _lora_names(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_qlora_loads_4bit_base_under_peft_lora(tiny_llama):
    model, tokenizer = load_model_and_tokenizer(tiny_llama, use_qlora=True, lora_r=4, lora_alpha=8)
    assert tokenizer is None
    assert isinstance(model, peft.PeftModel) and not isinstance(model.get_base_model(), DecoderOnlyModel)
    q_proj = model.get_base_model().model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)  # the 4-bit weight sits under peft's LoRA layer
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 2 * 7
    trained = _lora_names(model)
    assert trained and all("lora_" in n for n in trained)
    ids = torch.randint(0, 96, (2, 12))
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n in trained)


def test_lora_without_quantization_and_saved_adapter_reload_identically(tiny_llama, tmp_path):
    model, _ = load_model_and_tokenizer(tiny_llama, use_lora=True, lora_r=4, lora_alpha=8, lora_dropout=0.0)
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_()  # a trained-looking adapter (lora_B starts at zero)
    model.save_pretrained(tmp_path / "adapter")
    ids = torch.randint(0, 96, (1, 10))
    model.eval()
    want = model(input_ids=ids).logits
    again, _ = load_model_and_tokenizer(tmp_path / "adapter", trainable=False)
    assert isinstance(again, peft.PeftModel)
    torch.testing.assert_close(again(input_ids=ids).logits, want, rtol=0, atol=0)
    trainable, _ = load_model_and_tokenizer(tmp_path / "adapter")  # continue: the adapter comes back trainable
    assert _lora_names(trainable)


def test_lora_on_our_decoder_keeps_fast_generation_equal_to_the_forward(tmp_path):
    torch.manual_seed(0)
    ours = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 64, "d_model": 32, "num_heads": 2,
                             "num_layers": 2, "max_seq_len": 64})
    ours.save_pretrained(tmp_path / "ours")
    model, _ = load_model_and_tokenizer(tmp_path / "ours", use_lora=True, lora_r=4, lora_alpha=8)
    assert isinstance(model.get_base_model(), DecoderOnlyModel)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    model.eval()
    ids = torch.randint(0, 64, (1, 6))
    generated = model.generate(ids, max_new_tokens=10, do_sample=False)
    slow = ids
    with torch.no_grad():
        for _ in range(10):
            slow = torch.cat([slow, model(input_ids=slow).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert generated.tolist() == slow.tolist()


def test_qlora_on_our_decoder_quantizes_its_projections(tmp_path):
    torch.manual_seed(0)
    DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 64, "d_model": 64, "num_heads": 2,
                      "num_layers": 1, "max_seq_len": 64}).save_pretrained(tmp_path / "ours")
    model, _ = load_model_and_tokenizer(tmp_path / "ours", use_qlora=True, lora_r=4, lora_alpha=8)
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 7
    ids = torch.randint(0, 64, (2, 8))
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert all("lora_" in n for n in _lora_names(model))


def test_hub_alias_without_local_weights_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(InputError) as caught:
        load_model_and_tokenizer("mistral-7b", use_qlora=True)
    message = str(caught.value)
    assert "mistralai/Mistral-7B-v0.1" in message and "HF_HOME" in message and "\n" not in message
    with pytest.raises(InputError, match="unknown option"):
        load_model_and_tokenizer("mistral-7b", use_4bit=True)


def test_trainer_refuses_batch_keys_an_hf_forward_would_ignore(tiny_llama, tmp_path):
    from training import Trainer

    model, _ = load_model_and_tokenizer(tiny_llama, use_lora=True, lora_r=4, lora_alpha=8)
    ids = torch.randint(0, 96, (2, 12))
    packed = [{"input_ids": ids, "labels": ids, "segment_ids": torch.zeros_like(ids)}]
    trainer = Trainer(model=model, train_dataloader=packed, checkpoint_dir=tmp_path / "a", device="cpu",
                      progress_bar=False, tensorboard=False, plot=False)
    with pytest.raises(InputError, match=r"\['segment_ids'\] are not parameters of LlamaForCausalLM.forward"):
        trainer.train(epochs=1)
    plain = [{"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}]
    result = Trainer(model=model, train_dataloader=plain, checkpoint_dir=tmp_path / "b", device="cpu",
                     progress_bar=False, tensorboard=False, plot=False).train(epochs=1)
    assert result["global_step"] == 1


def test_qlora_adapter_merges_into_the_dequantized_base_and_extracts(tiny_llama, tmp_path):
    from minillm.hf.loading import write_training_note
    from minillm.hf.merge import merge_adapter
    from training import extract_model_for_inference

    model, _ = load_model_and_tokenizer(tiny_llama, use_qlora=True, lora_r=4, lora_alpha=8, lora_dropout=0.0,
                                        dtype="float32")
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.2)
    model.save_pretrained(tmp_path / "adapter")
    write_training_note(tmp_path / "adapter", str(tiny_llama), quantized=True, dtype=torch.float32)
    merged, difference = merge_adapter(tmp_path / "adapter")
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())
    _, original = merge_adapter(tmp_path / "adapter", merge_into="original")
    # bitsandbytes' CPU 4-bit product differs from an fp32 product with the de-quantized weights by ~1e-3 here;
    # the original full-precision weights are another model (NF4 moved them), 30x further off
    assert difference < 1e-2 and original > 10 * difference
    out = extract_model_for_inference(model_path=tmp_path / "adapter", output_path=tmp_path / "merged",
                                      device="cpu")
    reopened = transformers.AutoModelForCausalLM.from_pretrained(out)
    ids = torch.arange(20)[None, :]
    torch.testing.assert_close(reopened(input_ids=ids).logits, merged(input_ids=ids).logits, rtol=0, atol=1e-6)
