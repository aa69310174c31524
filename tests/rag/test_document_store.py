"""SimpleDocumentStore: the original docs' calls, retrieval modes, filters, removal, safe persistence, bad input."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from minillm.errors import InputError, MissingDependencyError
from rag.document_store import SearchResult, SimpleDocumentStore
from rag.embedders import HashedEmbedder

TEXTS = [
    "Aspirin lowers the risk of a first heart attack in adults over fifty.",
    "Vitamin D supplements did not reduce bone fractures in older women.",
    "Regular exercise improves sleep quality and mood in teenagers.",
    "Smoking raises blood pressure and the risk of stroke.",
    "Tailored telephone counseling increased mammography screening.",
    "Coffee drinking is not linked to heart disease in large cohorts.",
]
META = [{"topic": "heart", "year": 2001}, {"topic": "bones", "year": 2005}, {"topic": "sleep", "year": 2010},
        {"topic": "heart", "year": 2012}, {"topic": "screening", "year": 1999}, {"topic": "heart", "year": 2020}]


class Counting:
    """A stand-in embedder that records what it was asked to embed (not corpus-fitted)."""

    def __init__(self, dim: int = 8, width: int | None = None) -> None:
        self.dim, self.width, self.seen = dim, width, []
        self._hashed = HashedEmbedder(dim=dim)

    def __call__(self, texts):
        self.seen.append(list(texts))
        out = self._hashed(texts)
        return out if self.width is None else np.ones((len(texts), self.width), dtype=np.float32)


def store_with(retriever: str = "dense", **kwargs) -> SimpleDocumentStore:
    store = SimpleDocumentStore(embedding_dim=256, retriever=retriever, **kwargs)
    store.add_documents(TEXTS, metadata=META)
    store.compute_embeddings(show_progress=False)
    return store


def test_the_original_docs_calls_work_and_save_writes_a_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc_store = SimpleDocumentStore(embedding_dim=256)
    assert doc_store.add_documents(TEXTS) == list(range(len(TEXTS)))
    assert doc_store.compute_embeddings() == len(TEXTS)
    results = doc_store.search("Does aspirin prevent heart attacks?", top_k=3)
    assert len(results) == 3 and isinstance(results[0], SearchResult)
    assert results[0].doc_id == 0 and results[0].text == TEXTS[0] and results[0].metadata == {}
    assert results[0].score >= results[1].score >= results[2].score and -1.0 <= results[2].score <= 1.0
    doc_store.save("./data/document_store.pkl")
    saved = tmp_path / "data" / "document_store.pkl"
    assert saved.is_dir() and {p.name for p in saved.iterdir()} >= {"store.json", "documents.jsonl", "vectors",
                                                                     "embedder", ".minillm"}
    for array in saved.rglob("*.npy"):
        np.load(array, allow_pickle=False)  # every array reads without pickle
    again = SimpleDocumentStore.load("./data/document_store.pkl")
    assert again.search("Does aspirin prevent heart attacks?", top_k=3) == results
    doc_store.save("./data/document_store.pkl")  # saving again replaces the store it wrote


def test_an_empty_store_saves_loads_and_searches_to_nothing(tmp_path, caplog):
    store = SimpleDocumentStore(embedding_dim=256)
    store.add_documents([])
    assert store.compute_embeddings(show_progress=False) == 0
    store.save(tmp_path / "empty")
    with caplog.at_level(logging.WARNING, logger="rag.document_store"):
        assert SimpleDocumentStore.load(tmp_path / "empty").search("anything", top_k=3) == []
    assert "empty document store" in caplog.text


def test_compute_embeddings_embeds_only_new_documents():
    embedder = Counting()
    store = SimpleDocumentStore(embedder=embedder, embedding_dim=999)  # the embedder's dim wins
    assert store.embedding_dim == 8
    store.add_documents(TEXTS[:4])
    store.compute_embeddings(batch_size=3, show_progress=False)
    store.add_documents(TEXTS[4:])
    assert store.pending == 2
    assert store.compute_embeddings(show_progress=False) == 2
    assert embedder.seen == [TEXTS[:3], TEXTS[3:4], TEXTS[4:]]
    assert store.compute_embeddings(show_progress=False) == 0 and len(embedder.seen) == 3


def test_the_hashed_idf_is_fitted_once_and_refitted_when_the_store_doubles():
    store = SimpleDocumentStore(embedding_dim=64)
    store.add_documents(TEXTS[:2])
    assert store.compute_embeddings(show_progress=False) == 2 and store.embedder.fitted_docs == 2
    store.add_documents(TEXTS[2:4])
    assert store.compute_embeddings(show_progress=False) == 2 and store.embedder.fitted_docs == 2
    store.add_documents(TEXTS[4:])
    assert store.compute_embeddings(show_progress=False) == 6 and store.embedder.fitted_docs == 6


def test_filter_on_metadata_by_value_by_list_and_by_function():
    store = store_with()
    hits = store.search("heart attack risk", top_k=5, filter={"topic": "heart"})
    assert {h.doc_id for h in hits} == {0, 3, 5} and all(h.metadata["topic"] == "heart" for h in hits)
    assert [h.doc_id for h in store.search("risk", top_k=5, filter={"topic": ["bones", "sleep"]})] in ([1, 2], [2, 1])
    assert {h.doc_id for h in store.search("risk", top_k=5, filter=lambda m: m["year"] < 2002)} == {0, 4}
    assert store.search("risk", top_k=5, filter={"missing_key": 1}) == []
    for mode in ("bm25", "hybrid"):
        assert {h.doc_id for h in store.search("heart", top_k=5, filter={"topic": "heart"}, retriever=mode)} <= {0, 3, 5}


def test_remove_drops_documents_from_every_retriever():
    store = store_with()
    assert store.remove([0, 99]) == 1 and len(store) == len(TEXTS) - 1 and 0 not in store.doc_ids
    for mode in ("dense", "bm25", "hybrid"):
        assert all(h.doc_id != 0 for h in store.search("aspirin heart attack", top_k=10, retriever=mode))
    assert store.remove(3) == 1 and store.add_documents(["new text about aspirin"]) == [len(TEXTS)]  # ids never reused


def test_bm25_and_hybrid_rank_and_bm25_needs_no_embeddings():
    store = SimpleDocumentStore(retriever="bm25")
    store.add_documents(TEXTS, metadata=META)
    hits = store.search("mammography screening", top_k=3)
    assert hits[0].doc_id == 4 and len(hits) == 1  # only documents sharing a word are BM25 matches
    store.compute_embeddings(show_progress=False)
    fused = store.search("aspirin heart attack", top_k=3, retriever="hybrid")
    assert fused[0].doc_id == 0 and fused[0].score == pytest.approx(2 / 61)  # first in both lists


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_save_load_round_trip_gives_identical_results(tmp_path, retriever):
    store = store_with(retriever)
    queries = ["heart attack", "bone fractures vitamin", "sleep and exercise", "stroke"]
    before = [store.search(q, top_k=4) for q in queries]
    store.save(tmp_path / "store")
    again = SimpleDocumentStore.load(tmp_path / "store")
    assert again.retriever == retriever and again.documents == TEXTS and again.metadata == META
    assert [again.search(q, top_k=4) for q in queries] == before
    assert again.search("heart", top_k=2, filter={"topic": "heart"}) == store.search("heart", top_k=2,
                                                                                    filter={"topic": "heart"})
    meta = json.loads((tmp_path / "store" / "store.json").read_text())
    assert meta["format"] == "minillm-document-store" and meta["embedder"]["name"] == "hashed"


def test_a_pickle_file_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    old = tmp_path / "document_store.pkl"
    old.write_bytes(pickle.dumps(Payload(), protocol=4))
    with pytest.raises(InputError, match="is a pickle file.*never unpickles"):
        SimpleDocumentStore.load(old)
    with pytest.raises(InputError, match="is a pickle file"):
        store_with().save(old)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="is a file, not a document store"):
        SimpleDocumentStore.load(tmp_path / "notes.txt")
    assert not marker.exists() and old.read_bytes() == pickle.dumps(Payload(), protocol=4)


# ---------------------------------------------------------------- bad input
def test_bad_input_in_memory_gives_one_line_errors_naming_the_value():
    store = SimpleDocumentStore(embedding_dim=256)
    store.add_documents(TEXTS)
    with pytest.raises(InputError, match="6 of the store's 6 documents have no embeddings.*compute_embeddings"):
        store.search("heart")
    cases = [
        (lambda: store.add_documents(TEXTS[:2], metadata=[{}]), "metadata has 1 entries for 2 texts"),
        (lambda: store.add_documents(["a"], metadata=[{"when": object()}]), r"metadata\[0\] is not JSON"),
        (lambda: store.add_documents(["a"], metadata={"a": 1}), "metadata must be a list"),
        (lambda: store.add_documents("one text"), "list of strings"),
        (lambda: store.search("heart", top_k=0), "top_k must be a positive integer, got 0"),
        (lambda: store.search("", top_k=1), "query must be a non-empty string"),
        (lambda: store.search("heart", retriever="sparse"), "retriever 'sparse' is unknown"),
        (lambda: store.search("heart", filter="heart"), "filter must be a dict"),
        (lambda: store.remove(["a"]), "doc id 'a' is not an integer"),
        (lambda: store.compute_embeddings(batch_size=0), "batch_size must be a positive integer"),
        (lambda: SimpleDocumentStore(embedding_dim=0), "embedding_dim must be a positive integer, got 0"),
        (lambda: SimpleDocumentStore(embedder=object()), "embedder must be callable"),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=message):
            call()
    wrong = SimpleDocumentStore(embedder=Counting(dim=8, width=5))
    wrong.add_documents(TEXTS)
    with pytest.raises(InputError, match=r"shape \(6, 5\) for 6 documents; expected \(6, 8\)"):
        wrong.compute_embeddings(show_progress=False)


def _saved(tmp_path: Path) -> Path:
    store_with().save(tmp_path / "s")
    return tmp_path / "s"


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: (p / "store.json").write_text("{not json"), "store.json' is not readable JSON"),
    (lambda p: (p / "store.json").write_text('{"format": "chroma", "version": 1}'), "format 'chroma'"),
    (lambda p: (p / "store.json").unlink(), "holds no store.json"),
    (lambda p: (p / "documents.jsonl").write_text('{"id": 0}\n'), "documents.jsonl' is missing or damaged"),
    (lambda p: (p / "vectors" / "vectors.npy").write_bytes(b"\x93NUMPY garbage"), "vectors.npy"),
    (lambda p: (p / "embedder" / "hashed_df.npy").write_bytes(b"junk"), "hashed_df.npy"),
])
def test_a_corrupt_or_foreign_store_is_refused_naming_the_file(tmp_path, damage, message):
    path = _saved(tmp_path)
    damage(path)
    with pytest.raises(InputError, match=message):
        SimpleDocumentStore.load(path)


def test_a_store_whose_embedder_is_missing_or_of_another_width(tmp_path):
    path = _saved(tmp_path)
    with pytest.raises(InputError, match="dim 8, but the store .* holds 256-dim"):
        SimpleDocumentStore.load(path, embedder=Counting(dim=8))
    assert len(SimpleDocumentStore.load(path, embedder=HashedEmbedder(dim=256).fit(TEXTS))) == len(TEXTS)
    meta = json.loads((path / "store.json").read_text())
    meta["embedder"] = {"name": "openai-ada", "dim": 256}
    (path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="embedder 'openai-ada'.*not registered.*embedder=\\.\\.\\."):
        SimpleDocumentStore.load(path)
    meta["embedder"] = {"name": "encoder", "source": "/nowhere/minilm-copy", "dim": 256}
    (path / "store.json").write_text(json.dumps(meta))
    with pytest.raises(MissingDependencyError, match="embedder 'encoder' from '/nowhere/minilm-copy'"):
        SimpleDocumentStore.load(path)
    with pytest.raises(FileNotFoundError, match="no document store"):
        SimpleDocumentStore.load(tmp_path / "absent")


# ---------------------------------------------------------------- MiniLM through our encoder
@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine a second OpenMP thread waiting for a core made every small
    operation ~10x slower (measured: 13 ms per single-query embedding with one thread, 120-200 ms with two)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
@pytest.mark.shared_data
def test_pubmedqa_recall_at_5_with_minilm_through_our_encoder(shared_data, minilm_path, tmp_path, one_thread):
    from rag.encoder_embedder import EncoderEmbedder

    data = json.loads((shared_data / "pubmedqa" / "pqal_dev500.json").read_text())
    pmids = list(data)
    store = SimpleDocumentStore(embedder=EncoderEmbedder.from_pretrained("minilm", device="cpu"))
    ids = store.add_documents([" ".join(data[p]["CONTEXTS"]) for p in pmids], metadata=[{"pmid": p} for p in pmids])
    store.compute_embeddings(batch_size=64, show_progress=False)
    hits = [[r.doc_id for r in store.search(data[p]["QUESTION"], top_k=5)] for p in pmids]
    recall = float(np.mean([doc in found for doc, found in zip(ids, hits, strict=True)]))
    assert recall >= 0.99, recall
    store.save(tmp_path / "pubmedqa")
    again = SimpleDocumentStore.load(tmp_path / "pubmedqa")  # rebuilds EncoderEmbedder("minilm")
    assert type(again.embedder).__name__ == "EncoderEmbedder" and again.embedder.source == "minilm"
    question = data[pmids[0]]["QUESTION"]
    assert again.search(question, top_k=3) == store.search(question, top_k=3)
