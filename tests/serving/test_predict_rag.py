"""POST /predict (the seed's API) with and without an index: the response is the model's greedy answer to the
same prompt, and with ``--index_path`` numbered ``sources`` come back (also as an extra field of chat
completions, which the openai client keeps in ``model_extra``)."""

from __future__ import annotations

import httpx
import openai
import pytest
import torch

from rag.document_store import SimpleDocumentStore
from rag.prompting import SYSTEM_PROMPT
from rag.rag_model import RAGModel
from scripts.serving.app import create_app
from scripts.serving.engine import Engine
from scripts.serving.rag_sources import open_index
from scripts.serving.served_models import serve_model
from tokenizers_bpe import BPETokenizer

from .conftest import TEXTS, running_server, tiny_decoder

DOCS = [("Aspirin lowers the risk of heart attack in patients with a prior attack.", "Aspirin", "a.txt"),
        ("Tumor growth was reduced in mice that received the new treatment for six weeks.", "Tumors", "b.txt"),
        ("The river ran past the old mill under a grey sky.", "River", "c.txt")]


def reply_of(served, ids: list[int], max_tokens: int) -> str:
    out = served.model.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                eos_token_id=served.eos_token_ids)
    new = out[0, len(ids):].tolist()
    cut = next((i for i, t in enumerate(new) if t in served.eos_token_ids), len(new))
    return served.tokenizer.decode(new[:cut], skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def rag_setup(tmp_path_factory):
    tokenizer = BPETokenizer(vocab_size=600, show_progress=False)
    tokenizer.train(TEXTS * 4 + [d[0] for d in DOCS] * 4 + [SYSTEM_PROMPT] * 4 + ["Sources: Question: Answer"] * 4)
    served = serve_model(tiny_decoder(tokenizer, max_seq_len=1024), tokenizer, "tiny")
    store = SimpleDocumentStore(embedding_dim=128)
    store.add_documents([d[0] for d in DOCS], metadata=[{"title": d[1], "source": d[2]} for d in DOCS])
    store.compute_embeddings(show_progress=False)
    path = tmp_path_factory.mktemp("serve-index") / "index"
    store.save(str(path))
    index = open_index(path)
    with running_server(create_app(Engine(served), index=index, max_tokens_default=8, top_k=2)) as url:
        yield {"url": url, "served": served, "index": index}


def test_predict_returns_the_rag_answer_and_its_sources(rag_setup):
    url, served = rag_setup["url"], rag_setup["served"]
    question = "Does aspirin lower the risk of heart attack?"
    answer = httpx.post(f"{url}/predict", json={"question": question}, timeout=60).json()
    assert [s["n"] for s in answer["sources"]] == [1, 2]
    assert answer["sources"][0]["title"] == "Aspirin" and answer["sources"][0]["source"] == "a.txt"
    assert answer["sources"][0]["text"].startswith("Aspirin lowers") and answer["sources"][0]["score"] > 0
    rag = RAGModel(rag_setup["index"], served.model, served.tokenizer, context_length=served.context_length)
    fitted, _ = rag.build_prompt(question, 2, max_length=8)
    assert answer["response"] == reply_of(served, fitted.ids, 8)


def test_chat_with_an_index_carries_sources(rag_setup):
    api = openai.OpenAI(base_url=f"{rag_setup['url']}/v1", api_key="x", max_retries=0)
    reply = api.chat.completions.create(model="tiny", messages=[
        {"role": "user", "content": "Where did the river run?"}], max_tokens=4, temperature=0)
    sources = reply.model_extra["sources"]
    assert sources[0]["title"] == "River" and len(sources) == 2
    assert reply.usage.prompt_tokens > 60  # the passages are in the prompt


def test_predict_without_an_index(ours, ours_url):
    answer = httpx.post(f"{ours_url}/predict", json={"question": "the king spoke"}, timeout=60).json()
    assert set(answer) == {"response"}
    assert answer["response"] == reply_of(ours, ours.encode_chat([{"role": "user", "content": "the king spoke"}]),
                                          16)
    missing = httpx.post(f"{ours_url}/predict", json={"query": "wrong field"}, timeout=60)
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "question"
