"""RAGModel with our tiny decoder and a tiny transformers Llama: the prompt fits the context in tokens, the
question is never cut, the chat template is used when there is one, sources come back numbered [n], streaming
gives generate's text, retrieval works alone, and the seed's call without a tokenizer finds it."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import minillm
from minillm.errors import InputError
from rag.prompting import SYSTEM_PROMPT, chat_template_of
from rag.rag_model import RAGAnswer, RAGModel, Source, find_tokenizer, model_context_length
from tokenizers_bpe import BPETokenizer

CORPUS = [
    "Aspirin lowers the risk of heart attack in patients with a prior attack.",
    "The trial measured blood pressure in patients treated with a low dose of the drug.",
    "Cells divide when genes that control growth express more protein.",
    "Tumor growth was reduced in mice that received the new treatment for six weeks.",
    "Yes, the study found an effect of the dose on the risk of stroke.",
]


@dataclass
class Hit:
    text: str
    score: float
    metadata: dict = field(default_factory=dict)
    doc_id: int = 0


class WordStore:
    """A stand-in document store: passages ranked by shared words, with SimpleDocumentStore's result shape."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, top_k: int = 5, filter=None) -> list[Hit]:
        self.calls.append((query, top_k))
        words = set(re.findall(r"\w+", query.lower()))
        scored = [(len(words & set(re.findall(r"\w+", t.lower()))) / (1 + len(words)), i) for i, t in
                  enumerate(self.texts)]
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [Hit(self.texts[i], s, {"title": f"Doc {i}", "source": f"doc{i}.txt"}, i) for s, i in scored[:top_k]]


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    tok = BPETokenizer(vocab_size=800, show_progress=False)
    tok.train(CORPUS * 4 + [SYSTEM_PROMPT] * 3 + ["Sources: Question: Answer: No sources were found."] * 3)
    return tok


def random_decoder(tokenizer: BPETokenizer, max_seq_len: int = 256) -> minillm.DecoderOnlyModel:
    config = minillm.ModelConfig.from_preset(
        "tiny", vocab_size=tokenizer.vocab_size, d_model=64, num_heads=4, num_layers=2, max_seq_len=max_seq_len,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = minillm.DecoderOnlyModel(config)
    with torch.no_grad():  # far from the 0.02 init, so greedy text varies instead of repeating one token
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(std=0.3)
    return model.eval()


@pytest.fixture(scope="module")
def ours(tokenizer):
    return random_decoder(tokenizer)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, tokenizer) -> Path:
    """A random 2-layer transformers Llama saved with our BPE tokenizer (so name_or_path finds it)."""
    import transformers

    folder = tmp_path_factory.mktemp("tiny-llama")
    config = transformers.LlamaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=320,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(1)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(std=0.3)
    model.save_pretrained(folder)
    tokenizer.save(folder)
    return folder


@pytest.fixture(scope="module")
def hf_model(hf_dir):
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(hf_dir).eval()


def test_generate_answers_with_numbered_sources_from_our_decoder(ours, tokenizer):
    store = WordStore(CORPUS)
    rag = RAGModel(store, ours, tokenizer)
    answer = rag.generate(query="Does aspirin lower the risk of heart attack?", top_k=3, max_length=12,
                          temperature=0)
    assert isinstance(answer, RAGAnswer) and str(answer) == answer.text and store.calls[-1][1] == 3
    assert [s.number for s in answer.sources] == [1, 2, 3]
    assert answer.sources[0].text == CORPUS[0] and answer.sources[0].metadata["title"] == "Doc 0"
    assert answer.sources[0].score >= answer.sources[1].score and not answer.sources[0].truncated
    assert "[1] Doc 0: Aspirin lowers" in answer.prompt and "[3] " in answer.prompt
    assert "cite" in answer.prompt.lower() and "Question: Does aspirin lower the risk of heart attack?" in answer.prompt
    assert answer.prompt_tokens + 12 <= ours.config.max_seq_len
    sampled = [rag.generate(query="aspirin risk", top_k=1, max_length=6, temperature=0.9, seed=3).text
               for _ in range(2)]
    assert sampled[0] == sampled[1]  # a seed repeats the sample


def test_chat_template_is_used_when_the_tokenizer_has_one(ours, tokenizer):
    rag = RAGModel(WordStore(CORPUS), ours, tokenizer)
    fitted, _ = rag.build_prompt("What lowers the risk?", top_k=2, max_length=8)
    assert rag.chat and fitted.chat and fitted.text.startswith("<|im_start|>system\nYou answer questions")
    assert fitted.text.endswith("<|im_start|>assistant\n") and chat_template_of(tokenizer)
    assert fitted.ids == tokenizer.encode(fitted.text, add_special_tokens=False)
    assert tokenizer.token_to_id("<|im_end|>") in rag._stops()
    untemplated = copy.deepcopy(tokenizer)
    untemplated.chat_template = None
    bare = RAGModel(WordStore(CORPUS), ours, untemplated)
    fitted, _ = bare.build_prompt("What lowers the risk?", top_k=2, max_length=8)
    assert not bare.chat and "<|im_start|>" not in fitted.text and fitted.text.endswith("Answer:")
    with pytest.raises(InputError, match="no chat template"):
        RAGModel(WordStore(CORPUS), ours, untemplated, chat=True)


def test_passages_are_fitted_into_the_context_in_tokens(tokenizer):
    small = random_decoder(tokenizer, max_seq_len=200)
    long_passages = [" ".join(CORPUS) * 2, CORPUS[1] * 3, CORPUS[2]]
    rag = RAGModel(WordStore(long_passages), small, tokenizer)
    fitted, sources = rag.build_prompt("aspirin heart risk", top_k=3, max_length=24)
    assert len(fitted.ids) <= 200 - 24
    assert sources and sources[-1].truncated and len(sources) <= 3
    assert sources[-1].text in fitted.text and long_passages[0] not in fitted.text  # cut, not whole
    assert "Question: aspirin heart risk" in fitted.text


def test_a_question_too_long_for_the_context_is_a_one_line_error(tokenizer):
    small = random_decoder(tokenizer, max_seq_len=96)
    rag = RAGModel(WordStore(CORPUS), small, tokenizer)
    with pytest.raises(InputError, match=r"the question does not fit.*never cut") as caught:
        rag.generate(query="Does aspirin lower the risk of heart attack? " * 20, max_length=16)
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="max_length=96 leaves no room"):
        rag.generate(query="aspirin", max_length=96)
    with pytest.raises(InputError, match="query must be a non-empty string"):
        rag.generate(query="  ")
    with pytest.raises(InputError, match="temperature=-1"):
        rag.generate(query="aspirin", temperature=-1)


@pytest.mark.slow
def test_streaming_yields_the_text_generate_returns_for_ours_and_transformers(ours, tokenizer, hf_model):
    for model in (ours, hf_model):
        rag = RAGModel(WordStore(CORPUS), model, tokenizer)
        answer = rag.generate(query="What did the trial measure?", top_k=2, max_length=12, temperature=0)
        stream = rag.stream(query="What did the trial measure?", top_k=2, max_length=12, temperature=0)
        assert [s.number for s in stream.sources] == [1, 2] and stream.answer is None
        pieces = list(stream)
        assert answer.text and "".join(pieces) == answer.text == stream.answer.text, type(model).__name__
        assert stream.answer.sources == answer.sources


def test_transformers_model_without_a_tokenizer_finds_it_through_name_or_path(hf_model, hf_dir):
    rag = RAGModel(WordStore(CORPUS), hf_model)  # the seed's call
    assert isinstance(rag.tokenizer, BPETokenizer) and rag.context_length == 320
    answer = rag.generate(query="What is reduced in mice?", top_k=3, max_length=10, temperature=0.7)
    assert len(answer.sources) == 3 and answer.sources[0].text == CORPUS[3]
    assert model_context_length(hf_model) == 320


def test_an_hf_tokenizer_works_too(hf_model, hf_dir):
    from minillm.hf.tokenizer import HFTokenizer

    hf_tokenizer = HFTokenizer.load(hf_dir)
    rag = RAGModel(WordStore(CORPUS), hf_model, hf_tokenizer)
    answer = rag.generate(query="What did the trial measure?", top_k=2, max_length=6, temperature=0)
    assert rag.chat and answer.prompt.startswith("<|im_start|>system")
    assert answer.prompt_tokens == len(hf_tokenizer.encode(answer.prompt, add_special_tokens=False))


def test_our_model_needs_its_tokenizer_named_or_found(ours, tokenizer, tmp_path):
    with pytest.raises(InputError, match=r"cannot find the tokenizer.*RAGModel\(doc_store, model, tokenizer\)"):
        RAGModel(WordStore(CORPUS), ours)
    tokenizer.save(tmp_path)

    class Loaded(torch.nn.Module):  # what a loader that records its source directory gives
        def __init__(self) -> None:
            super().__init__()
            self.inner, self.config, self.name_or_path = ours, ours.config, str(tmp_path)

        def generate(self, *args, **kwargs):
            return self.inner.generate(*args, **kwargs)

    found = find_tokenizer(Loaded())
    assert found.encode("aspirin risk") == tokenizer.encode("aspirin risk")
    ours.tokenizer = tokenizer
    try:
        assert RAGModel(WordStore(CORPUS), ours).tokenizer is tokenizer
    finally:
        del ours.tokenizer


def test_any_model_speaking_the_generate_protocol_works(ours, tokenizer):
    class ProtocolOnly:
        """generate() and a config: nothing else of ours."""

        config = ours.config

        def __init__(self) -> None:
            self.calls = []

        def parameters(self):
            return ours.parameters()

        def generate(self, input_ids, max_new_tokens=32, do_sample=False, temperature=1.0, top_k=None, top_p=None,
                     eos_token_id=None, attention_mask=None):
            self.calls.append({"max_new_tokens": max_new_tokens, "do_sample": do_sample, "eos": eos_token_id})
            return ours.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=do_sample, eos_token_id=eos_token_id)

    model = ProtocolOnly()
    rag = RAGModel(WordStore(CORPUS), model, tokenizer)
    answer = rag.generate(query="heart attack", max_length=10, temperature=0)
    assert model.calls[-1]["max_new_tokens"] == 10 and model.calls[-1]["do_sample"] is False
    assert tokenizer.eos_token_id in model.calls[-1]["eos"]
    assert "".join(rag.stream(query="heart attack", max_length=10, temperature=0)) == answer.text


def test_retrieve_alone_and_an_empty_store(ours, tokenizer):
    store = WordStore(CORPUS)
    rag = RAGModel(store, ours, tokenizer)
    sources = rag.retrieve("tumor growth in mice", top_k=2)
    assert all(isinstance(s, Source) for s in sources) and [s.number for s in sources] == [1, 2]
    assert sources[0].text == CORPUS[3] and sources[0].doc_id == 3 and sources[0].metadata["source"] == "doc3.txt"
    assert rag.retrieve("tumor", top_k=0) == []
    with pytest.raises(InputError, match="top_k=-1"):
        rag.retrieve("tumor", top_k=-1)
    empty = RAGModel(WordStore([]), ours, tokenizer)
    answer = empty.generate(query="anything?", max_length=4, temperature=0)
    assert answer.sources == [] and "No sources were found" in answer.prompt


def test_cited_lists_the_sources_an_answer_cites():
    sources = [Source(n, f"text {n}", {}, 1.0 / n) for n in (1, 2)]
    assert RAGAnswer("It works [2], as [1] and [2] say; [7] is not a source.", sources).cited == [2, 1]
    assert RAGAnswer("No citation.", sources).cited == []


def test_bad_store_and_model_are_refused(ours, tokenizer):
    with pytest.raises(InputError, match="doc_store must have a search"):
        RAGModel(object(), ours, tokenizer)
    with pytest.raises(InputError, match="model must have a generate"):
        RAGModel(WordStore(CORPUS), object(), tokenizer)
    with pytest.raises(InputError, match="context size of this"):
        RAGModel(WordStore(CORPUS), type("NoConfig", (), {"generate": lambda self: None})(), tokenizer)
