"""Embedders (hashed TF-IDF, our encoder on MiniLM against transformers), the registry, BM25 and RRF."""

from __future__ import annotations

import numpy as np
import pytest

from minillm.errors import InputError, MissingDependencyError
from rag.bm25 import BM25, tokenize
from rag.embedders import (
    EMBEDDERS,
    Embedder,
    HashedEmbedder,
    embedder_from_spec,
    embedder_spec,
    save_embedder_state,
)
from rag.hybrid import reciprocal_rank_fusion

CORPUS = [
    "The cat sat on the mat and purred.",
    "Dogs chase cats around the garden.",
    "Aspirin lowers the risk of heart attack in adults.",
    "Vitamin D supplements and bone fractures in older women.",
    "Heart attack risk rises with smoking and high blood pressure.",
    "A mat for the dog, a bed for the cat.",
]


# ---------------------------------------------------------------- hashed embedder
def test_hashed_embedder_is_deterministic_normalised_and_speaks_the_protocol():
    first, second = HashedEmbedder(dim=64), HashedEmbedder(dim=64)
    a, b = first(CORPUS), second(CORPUS)
    assert isinstance(first, Embedder) and first.dim == 64
    assert a.shape == (len(CORPUS), 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)  # CRC-32 hashing: the same on every run and machine
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    assert np.count_nonzero(first(["!!! ..."])) == 0 and first([]).shape == (0, 64)
    # fixed values guard against an accidental change of the hashing scheme (saved stores depend on it)
    cat = HashedEmbedder(dim=256)(["cat"])[0]  # "w:cat" and the 3- to 5-grams of " cat ": 7 columns
    assert np.flatnonzero(cat).tolist() == [9, 15, 104, 176, 189, 244, 255]
    assert round(float(cat.sum()), 5) == -0.37796


def test_hashed_idf_weighs_rare_words_and_ranks_the_right_document():
    plain = HashedEmbedder(dim=512)
    fitted = HashedEmbedder(dim=512).fit(CORPUS)
    assert fitted.fitted_docs == len(CORPUS) and plain.fitted_docs == 0
    assert not np.allclose(plain(CORPUS), fitted(CORPUS))
    scores = fitted(["aspirin and heart attack"]) @ fitted(CORPUS).T
    assert int(np.argmax(scores)) == 2


def test_hashed_state_round_trips_through_spec_and_npy(tmp_path):
    embedder = HashedEmbedder(dim=32, word_ngrams=2).fit(CORPUS)
    spec = embedder_spec(embedder)
    save_embedder_state(embedder, tmp_path)
    assert spec["name"] == "hashed" and spec["dim"] == 32 and spec["fitted_docs"] == len(CORPUS)
    np.load(tmp_path / "hashed_df.npy", allow_pickle=False)  # a plain array, no pickle
    again = embedder_from_spec(spec, tmp_path)
    np.testing.assert_array_equal(again(CORPUS), embedder(CORPUS))


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"dim": 0}, "embedding_dim"), ({"dim": "256"}, "embedding_dim"), ({"dim": True}, "embedding_dim"),
    ({"char_ngrams": (5, 3)}, "char_ngrams"), ({"buckets": 1000}, "buckets"), ({"word_ngrams": 0}, "word_ngrams"),
])
def test_hashed_embedder_refuses_bad_options(kwargs, named):
    with pytest.raises(InputError, match=named):
        HashedEmbedder(**kwargs)


def test_embedders_refuse_a_lone_string_and_non_strings():
    with pytest.raises(InputError, match="list of strings"):
        HashedEmbedder()("one text")
    with pytest.raises(InputError, match=r"texts\[1\] is a int"):
        HashedEmbedder()(["ok", 3])


def test_hashed_state_file_that_is_damaged_is_refused(tmp_path):
    embedder = HashedEmbedder(dim=16).fit(CORPUS)
    spec = embedder_spec(embedder)
    np.save(tmp_path / "hashed_df.npy", np.zeros(7, dtype=np.int32))
    with pytest.raises(InputError, match="hashed_df.npy"):
        embedder_from_spec(spec, tmp_path)
    (tmp_path / "hashed_df.npy").write_bytes(b"not numpy")
    with pytest.raises(InputError, match="hashed_df.npy"):
        embedder_from_spec(spec, tmp_path)


# ---------------------------------------------------------------- registry
def test_registry_names_an_unknown_embedder_and_a_missing_model(tmp_path):
    assert "hashed" in EMBEDDERS
    with pytest.raises(InputError, match="'sentence-t5'.*not registered"):
        embedder_from_spec({"name": "sentence-t5", "dim": 768}, tmp_path)
    with pytest.raises(InputError, match="not valid"):
        embedder_from_spec(["hashed"], tmp_path)
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(MissingDependencyError, match=f"'encoder' from '{missing}'.*does not exist"):
        embedder_from_spec({"name": "encoder", "source": missing, "dim": 384}, tmp_path)


# ---------------------------------------------------------------- BM25
def test_bm25_matches_bm25s_scores_and_rankings():
    import bm25s

    queries = ["cat on a mat", "heart attack risk", "fractures of bones in women", "zebra"]
    ours = BM25().index(CORPUS)
    reference = bm25s.BM25()
    reference.index(bm25s.tokenize(CORPUS, stopwords="en", show_progress=False), show_progress=False)
    for query in queries:
        expected = reference.get_scores(bm25s.tokenize(query, stopwords="en", show_progress=False,
                                                       return_ids=False)[0])
        np.testing.assert_allclose(ours.scores(query), expected, rtol=1e-5, atol=1e-6)
    scores, rows = ours.search(queries[:2], k=3)
    assert rows.tolist() == [[0, 5, 1], [2, 4, 0]] and scores.shape == (2, 3) and scores.dtype == np.float32
    assert tokenize("The cat's 2 HATS") == ["cat", "hats"]


def test_bm25_save_load_round_trip_and_damaged_files(tmp_path):
    index = BM25(k1=1.2, b=0.5).index(CORPUS)
    index.save(tmp_path / "bm25")
    again = BM25.load(tmp_path / "bm25")
    np.testing.assert_array_equal(again.scores("heart attack"), index.scores("heart attack"))
    assert (again.k1, again.b, len(again)) == (1.2, 0.5, len(CORPUS))
    (tmp_path / "bm25" / "bm25.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not a minillm BM25 index"):
        BM25.load(tmp_path / "bm25")
    with pytest.raises(InputError, match="not a readable BM25 index"):
        BM25.load(tmp_path / "nowhere")
    with pytest.raises(InputError, match="k must be a positive integer"):
        index.search("cat", k=0)
    with pytest.raises(InputError, match="b must be"):
        BM25(b=2)


# ---------------------------------------------------------------- RRF
def test_reciprocal_rank_fusion_sums_reciprocal_ranks():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    assert [doc for doc, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert reciprocal_rank_fusion([[5, 6], [6, 5]])[0][0] == 5  # a tie keeps first appearance
    assert reciprocal_rank_fusion([[1], [2]], weights=[1, 3], limit=1) == [(2, pytest.approx(3 / 61))]
    with pytest.raises(InputError, match="weights"):
        reciprocal_rank_fusion([[1]], weights=[1, 2])


# ---------------------------------------------------------------- our encoder on MiniLM
@pytest.fixture(scope="module")
def minilm_embedder(minilm_path):
    from rag.encoder_embedder import EncoderEmbedder

    return EncoderEmbedder.from_pretrained("minilm", device="cpu")


@pytest.mark.slow
def test_encoder_embedder_on_minilm_equals_transformers_mean_pooling(minilm_embedder, minilm_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    long_text = " ".join(CORPUS * 12)  # ~450 tokens: truncated to 256 on both sides
    texts = [*CORPUS, "Is aspirin good for the heart?", long_text]
    ours = minilm_embedder(texts)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    reference = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32 and minilm_embedder.dim == 384
    assert float(np.min(np.sum(ours * reference, axis=1))) > 0.9999
    spec = embedder_spec(minilm_embedder)
    assert spec == {"name": "encoder", "source": "minilm", "dim": 384, "max_length": 256, "long_texts": "truncate",
                    "pooling": "mean"}


@pytest.mark.slow
def test_encoder_embedder_chunks_long_texts_and_refuses_bad_options(minilm_embedder):
    from rag.encoder_embedder import EncoderEmbedder

    chunked = EncoderEmbedder(minilm_embedder.model, minilm_embedder.tokenizer, max_length=32, long_texts="chunk")
    short = "Aspirin lowers the risk of heart attack."
    np.testing.assert_allclose(chunked([short]), minilm_embedder([short]), atol=1e-5)  # fits: no chunking
    long_text = " ".join(CORPUS)
    ids = minilm_embedder.tokenizer.encode(long_text, add_special_tokens=False)
    windows = [ids[i:i + 30] for i in range(0, len(ids), 30)]
    parts = chunked._embed_sequences([[101, *w, 102] for w in windows])
    expected = (parts * np.array([len(w) + 2 for w in windows], dtype=np.float32)[:, None]).sum(0)
    np.testing.assert_allclose(chunked([long_text])[0], expected / np.linalg.norm(expected), atol=1e-5)
    with pytest.raises(InputError, match="max_length must be an integer from 3 to the model's max_seq_len 512"):
        EncoderEmbedder(minilm_embedder.model, minilm_embedder.tokenizer, max_length=1024)
    with pytest.raises(InputError, match="long_texts"):
        EncoderEmbedder(minilm_embedder.model, minilm_embedder.tokenizer, long_texts="average")
    with pytest.raises(InputError, match="from_pretrained"):
        chunked.spec()  # built from objects: a saved store could not rebuild it


def test_encoder_embedder_runs_a_checkpoint_we_trained_and_a_store_restores_it(tmp_path):
    import torch

    from minillm import EncoderOnlyModel
    from rag.document_store import SimpleDocumentStore
    from rag.encoder_embedder import EncoderEmbedder
    from tokenizers_bpe import BPETokenizer

    tokenizer = BPETokenizer(vocab_size=400, show_progress=False)
    tokenizer.train(CORPUS * 3)
    torch.manual_seed(0)
    model = EncoderOnlyModel({"model_type": "encoder_only", "vocab_size": tokenizer.vocab_size, "d_model": 32,
                              "num_heads": 2, "num_layers": 2, "max_seq_len": 64})
    model.save_pretrained(tmp_path / "encoder", tokenizer=tokenizer)
    embedder = EncoderEmbedder.from_pretrained(tmp_path / "encoder", max_length=64, device="cpu")
    texts = [*CORPUS, " ".join(CORPUS * 4)]  # the last one is longer than 64 tokens: truncated
    vectors = embedder(texts)
    assert vectors.shape == (len(texts), 32) and embedder.source == str((tmp_path / "encoder").resolve())
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    store = SimpleDocumentStore(embedder=embedder)
    store.add_documents(texts)
    store.compute_embeddings(show_progress=False)
    store.save(tmp_path / "store")
    again = SimpleDocumentStore.load(tmp_path / "store")
    assert isinstance(again.embedder, EncoderEmbedder) and again.embedder.max_length == 64
    np.testing.assert_allclose(again.embedder(texts), vectors, atol=1e-6)
    assert again.search("heart attack", top_k=3) == store.search("heart attack", top_k=3)
