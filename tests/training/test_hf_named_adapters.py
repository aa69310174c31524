"""Several named LoRA adapters on one base (minillm.hf.adapters.AdapterSet): each changes the output, switching
back to the base restores it bit for bit, per-call switches, and one-line errors for a foreign base or a folder
that is no adapter; on a transformers Llama and on our DecoderOnlyModel (which takes the same adapters)."""

from __future__ import annotations

import gc
import json
import shutil

import peft
import pytest
import torch
import transformers

import minillm
from minillm.errors import InputError
from minillm.hf.adapters import AdapterSet, find_adapter, same_model

PERSONAS = ("eli5", "intuitive", "executive")
TARGETS = {"eli5": ["q_proj", "v_proj"], "intuitive": ["q_proj", "v_proj"], "executive": ["o_proj", "down_proj"]}
VOCAB = 96


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny random Llama saved by transformers, three persona adapters on it (random lora_B, so each changes
    the output), and what each adapter model gave for ``ids`` when it was made."""
    root = tmp_path_factory.mktemp("named-adapters")
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(root / "base")
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    expected = {}
    for seed, name in enumerate(PERSONAS):
        base = transformers.AutoModelForCausalLM.from_pretrained(root / "base")
        model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                          target_modules=TARGETS[name]))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for key, param in model.named_parameters():
                if "lora_B" in key:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        model.eval()
        with torch.no_grad():
            expected[name] = model(input_ids=ids).logits
        model.save_pretrained(root / name)
    return {"root": root, "ids": ids, "expected": expected}


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _greedy(model, ids):
    return model.generate(ids, max_new_tokens=8, do_sample=False)[:, ids.shape[1]:].tolist()


def _check_switching(adapters, made, plain_logits, plain_tokens, atol):
    ids = made["ids"]
    for name in PERSONAS:
        adapters.load(name, made["root"] / name)
    assert adapters.names() == list(PERSONAS) and adapters.active is None
    assert torch.equal(_logits(adapters.model, ids), plain_logits)  # loading switches nothing on
    outputs = {}
    for name in PERSONAS:
        adapters.use(name)
        assert adapters.active == name
        logits = _logits(adapters.model, ids)
        torch.testing.assert_close(logits, made["expected"][name], rtol=0, atol=atol)  # what peft alone gives
        assert (logits - plain_logits).abs().max() > 0.1
        outputs[name] = _greedy(adapters.model, ids)
        assert outputs[name] != plain_tokens, name
    assert len({json.dumps(tokens) for tokens in outputs.values()}) == len(PERSONAS)
    adapters.use(None)
    assert adapters.active is None
    assert torch.equal(_logits(adapters.model, ids), plain_logits)  # the base, bit for bit
    assert _greedy(adapters.model, ids) == plain_tokens
    adapters.use("intuitive")
    with adapters.using("executive") as model:  # a per-call switch ...
        assert _greedy(model, ids) == outputs["executive"]
    assert adapters.active == "intuitive" and _greedy(adapters.model, ids) == outputs["intuitive"]  # ... undone
    with adapters.using(None):
        assert torch.equal(_logits(adapters.model, ids), plain_logits)
    got = adapters.generate(ids, adapter="eli5", max_new_tokens=8, do_sample=False)
    assert got[:, ids.shape[1]:].tolist() == outputs["eli5"] and adapters.active == "intuitive"
    adapters.use("base")
    assert torch.equal(_logits(adapters.model, ids), plain_logits)
    return outputs


def test_named_adapters_on_a_transformers_base_switch_and_restore_the_base_exactly(made):
    base = transformers.AutoModelForCausalLM.from_pretrained(made["root"] / "base").eval()
    plain_logits, plain_tokens = _logits(base, made["ids"]), _greedy(base, made["ids"])
    adapters = AdapterSet(base)
    assert adapters.base_name == str(made["root"] / "base") and adapters.names() == []
    _check_switching(adapters, made, plain_logits, plain_tokens, atol=0)
    with pytest.raises(InputError, match="already loaded"):
        adapters.load("eli5", made["root"] / "intuitive")
    with pytest.raises(InputError) as caught:
        adapters.use("pirate")
    assert "'pirate'" in str(caught.value) and "eli5, intuitive, executive, base" in str(caught.value)


def test_the_same_adapters_on_our_decoder_loaded_from_the_same_weights(made):
    ours = minillm.load_pretrained(made["root"] / "base")
    assert isinstance(ours, minillm.DecoderOnlyModel)
    plain_logits, plain_tokens = _logits(ours, made["ids"]), _greedy(ours, made["ids"])
    adapters = AdapterSet(ours, base_name=made["root"] / "base")
    outputs = _check_switching(adapters, made, plain_logits, plain_tokens, atol=1e-5)
    hf = AdapterSet(transformers.AutoModelForCausalLM.from_pretrained(made["root"] / "base"))
    hf.load("eli5", made["root"] / "eli5")
    hf.use("eli5")
    assert _greedy(hf.model, made["ids"]) == outputs["eli5"]  # same tokens as transformers + peft


def test_adapters_made_on_our_preset_decoder_name_no_base_and_load(tmp_path):
    config = minillm.ModelConfig.from_preset("tiny", vocab_size=64, d_model=32, num_heads=2, num_layers=1,
                                             max_seq_len=32)
    torch.manual_seed(0)
    minillm.DecoderOnlyModel(config).save_pretrained(tmp_path / "ours")
    made = minillm.load_pretrained(tmp_path / "ours")
    model = peft.get_peft_model(made, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for key, param in model.named_parameters():
            if "lora_B" in key:
                param.normal_(std=0.5)
    model.save_pretrained(tmp_path / "tuned")
    assert json.loads((tmp_path / "tuned" / "adapter_config.json").read_text())["base_model_name_or_path"] is None
    ids = torch.randint(0, 64, (1, 6))
    base = minillm.load_pretrained(tmp_path / "ours")
    plain = _logits(base, ids)
    adapters = AdapterSet(base, base_name=tmp_path / "ours")
    adapters.load("tuned", tmp_path / "tuned")  # names no base: nothing to check it against
    adapters.use("tuned")
    assert not torch.equal(_logits(adapters.model, ids), plain)
    adapters.use(None)
    model = adapters.model
    del adapters
    gc.collect()
    assert torch.equal(_logits(model, ids), plain)  # the switch lives in the model, not in the AdapterSet


def test_an_adapter_of_another_base_is_one_line_naming_both(made, tmp_path):
    foreign = tmp_path / "foreign"
    shutil.copytree(made["root"] / "eli5", foreign)
    config = json.loads((foreign / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "mistralai/Mistral-7B-v0.1"
    (foreign / "adapter_config.json").write_text(json.dumps(config))
    base = transformers.AutoModelForCausalLM.from_pretrained(made["root"] / "base")
    adapters = AdapterSet(base)
    with pytest.raises(InputError) as caught:
        adapters.load("foreign", foreign)
    message = str(caught.value)
    assert "\n" not in message and "mistralai/Mistral-7B-v0.1" in message and str(made["root"] / "base") in message
    assert adapters.names() == []  # refused before peft touched the model
    adapters.load("foreign", foreign, check_base=False)  # the explicit override
    assert adapters.names() == ["foreign"]


def test_a_folder_without_adapter_config_is_one_line(made, tmp_path):
    (tmp_path / "empty").mkdir()
    adapters = AdapterSet(transformers.AutoModelForCausalLM.from_pretrained(made["root"] / "base"))
    for bad, expected in ((tmp_path / "empty", "holds no adapter_config.json"), (tmp_path / "absent", "does not exist")):
        with pytest.raises(InputError) as caught:
            adapters.load("x", bad)
        assert "\n" not in str(caught.value) and str(bad) in str(caught.value) and expected in str(caught.value)
    with pytest.raises(InputError, match="adapter name 'base' is invalid"):
        adapters.load("base", made["root"] / "eli5")


def test_find_adapter_takes_a_path_name_equals_path_or_a_registered_name(made, tmp_path):
    root = made["root"]
    assert find_adapter(str(root / "eli5")) == ("eli5", root / "eli5")
    assert find_adapter(f"kid={root / 'eli5'}") == ("kid", root / "eli5")
    assert find_adapter("executive", [tmp_path / "nowhere", root]) == ("executive", root / "executive")
    with pytest.raises(InputError) as caught:
        find_adapter("pirate", [root])
    assert "'pirate'" in str(caught.value) and str(root / "pirate") in str(caught.value)


def test_same_model_compares_paths_aliases_and_hub_ids(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    assert same_model("m", str(tmp_path / "m") + "/")
    assert same_model("mistral-7b", "mistralai/Mistral-7B-v0.1")
    assert same_model("SmolLM2", "HuggingFaceTB/SmolLM2-135M-Instruct") and same_model("smollm2-135m", "smollm2")
    snapshot = tmp_path / "hub" / "models--mistralai--Mistral-7B-v0.1" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    assert same_model(snapshot, "mistral-7b")
    assert not same_model("m", "mistral-7b") and not same_model("llama-3-8b", "mistral-7b")
    from minillm.assets import smollm2_gguf_path

    converted = tmp_path / "cache" / "gguf" / f"{smollm2_gguf_path().stem}-0123456789abcdef"  # gguf_to_directory's
    converted.mkdir(parents=True)
    assert same_model(converted, "smollm2") and same_model(smollm2_gguf_path(), "smollm2-135m-instruct")
    assert not same_model(converted, "m")
