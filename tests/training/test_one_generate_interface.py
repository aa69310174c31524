"""One generate call and one tokenizer surface (GUIDE section 2) for our DecoderOnlyModel, transformers'
LlamaForCausalLM with the same weights and a peft-wrapped one; and minillm.hf.streaming, the ``stream`` of
transformers models, against their own ``generate``."""

from __future__ import annotations

import peft
import pytest
import torch
import transformers

import minillm
from minillm.errors import InputError
from minillm.hf.streaming import stream, streaming_function
from minillm.hf.tokenizer import HFTokenizer
from tokenizers_bpe import BPETokenizer

VOCAB = 128
LINES = ["The king and the queen spoke to the people.", "Bread, wine and war; the river ran past the mill.",
         "A grey sky over the old castle.", "What is a transformer? It is a model of attention."]


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Our decoder, the transformers copy of its weights, and that copy under a zero (fresh) LoRA adapter."""
    folder = tmp_path_factory.mktemp("one-interface") / "ours"
    config = minillm.ModelConfig.from_preset("tiny", vocab_size=VOCAB, d_model=64, num_heads=4, num_layers=2,
                                             max_seq_len=64)
    torch.manual_seed(0)
    made = minillm.DecoderOnlyModel(config)
    with torch.no_grad():  # weights far from the 0.02 init, so greedy text varies instead of repeating one token
        for param in made.parameters():
            if param.dim() == 2:
                param.normal_(std=0.3)
    made.save_pretrained(folder)
    ours = minillm.load_pretrained(folder).eval()
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    wrapped = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder),
                                  peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM")).eval()
    return {"ours": ours, "hf": hf, "peft": wrapped}


def greedy(model, input_ids, eos_token_id):
    """The one call RAGModel and the evaluation harness make, whatever the model."""
    return model.generate(input_ids, max_new_tokens=8, do_sample=False, eos_token_id=eos_token_id)


def test_generate_is_one_call_with_one_answer_for_ours_transformers_and_peft(three):
    assert isinstance(three["hf"], transformers.LlamaForCausalLM) and isinstance(three["peft"], peft.PeftModel)
    ids = torch.randint(3, VOCAB, (2, 6), generator=torch.Generator().manual_seed(2))
    outputs = {name: greedy(model, ids, eos_token_id=VOCAB - 1) for name, model in three.items()}
    for name, out in outputs.items():  # all return prompt + new tokens as one (B, T + n) tensor
        assert isinstance(out, torch.Tensor) and out.shape == (2, 14) and torch.equal(out[:, :6], ids), name
    assert outputs["ours"].tolist() == outputs["hf"].tolist() == outputs["peft"].tolist()
    new = outputs["ours"][0, 6:].tolist()
    step = next(k for k in range(1, len(new)) if new[k] not in new[:k])  # a token row 0 first makes at step k
    stopped = {name: greedy(model, ids, eos_token_id=new[step]) for name, model in three.items()}
    assert stopped["ours"].tolist() == stopped["hf"].tolist() == stopped["peft"].tolist()
    assert stopped["ours"][0, 6 + step] == new[step] and stopped["ours"][0, 6:6 + step].tolist() == new[:step]


def test_hf_stream_yields_exactly_what_generate_returns(three):
    ids = torch.randint(3, VOCAB, (2, 5), generator=torch.Generator().manual_seed(3))
    for name in ("hf", "peft"):
        model = three[name]
        want = model.generate(ids, max_new_tokens=10, do_sample=False)[:, 5:]
        steps = list(stream(model, ids, max_new_tokens=10))
        assert all(step.shape == (2,) for step in steps)
        assert torch.stack(steps, dim=1).tolist() == want.tolist(), name
        ours = list(three["ours"].stream(ids, max_new_tokens=10))
        assert torch.stack(ours, dim=1).tolist() == want.tolist()
    assert streaming_function(three["ours"]) == three["ours"].stream  # ours keeps its own fast loop
    assert streaming_function(three["hf"]).func is stream


def test_hf_stream_samples_reproducibly_stops_early_and_validates(three):
    model, ids = three["hf"], torch.randint(3, VOCAB, (1, 5), generator=torch.Generator().manual_seed(4))
    options = {"max_new_tokens": 12, "do_sample": True, "temperature": 1.5, "top_k": 40, "top_p": 0.9}
    before = torch.random.get_rng_state()
    first = [int(t) for t in stream(model, ids, seed=7, **options)]
    assert torch.equal(torch.random.get_rng_state(), before)  # the seed forks the RNG
    assert first == [int(t) for t in stream(model, ids, seed=7, **options)] and len(first) == 12
    greedy_ids = [int(t) for t in stream(model, ids, max_new_tokens=12)]
    assert [int(t) for t in stream(model, ids, max_new_tokens=12, eos_token_id=greedy_ids[2])] == greedy_ids[:3]
    tokenizer = _Letters()
    stop = tokenizer.decode(greedy_ids[3:5])
    got = [int(t) for t in stream(model, ids, max_new_tokens=12, stop=[stop], tokenizer=tokenizer)]
    assert got == greedy_ids[: len(got)] and stop in tokenizer.decode(got) and len(got) <= 5
    steps = stream(model, ids, max_new_tokens=50)
    next(steps)
    steps.close()  # the worker thread stops at its next step
    with pytest.raises(InputError, match="temperature"):
        list(stream(model, ids, do_sample=True, temperature=0))
    with pytest.raises(InputError, match="stop strings need a tokenizer"):
        list(stream(model, ids, stop="x"))


class _Letters:
    """A stand-in tokenizer: id i is one letter of a 26-letter cycle."""

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(97 + int(i) % 26) for i in ids)


def test_one_tokenizer_surface_for_our_bpe_and_the_wrapped_hf_tokenizer(tmp_path):
    ours = BPETokenizer(vocab_size=300, show_progress=False).train(LINES)
    ours.save(tmp_path / "tok")
    hf = HFTokenizer.load(tmp_path / "tok")
    assert isinstance(hf.tokenizer, transformers.PreTrainedTokenizerBase)
    text = "The queen spoke: what is attention?"
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is RAG?"}]
    results = {}
    for name, tokenizer in (("ours", ours), ("hf", hf)):
        ids = tokenizer.encode(text)
        results[name] = {
            "ids": ids,
            "plain": tokenizer.encode(text, add_special_tokens=False),
            "text": tokenizer.decode(ids, skip_special_tokens=True),
            "chat": tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
            "eos": tokenizer.eos_token_id,
            "pad": tokenizer.pad_token_id,
            "vocab": tokenizer.vocab_size,
        }
        assert results[name]["text"] == text and isinstance(results[name]["chat"], str)
        assert results[name]["chat"].endswith("<|im_start|>assistant\n")
    assert results["ours"] == results["hf"]
    assert ours.apply_chat_template(messages, tokenize=True) == ours.encode(
        ours.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
