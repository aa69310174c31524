"""VectorIndex (exact) and FaissIndex (HNSW / IVF): exactness against numpy and faiss, ids, persistence, errors."""

from __future__ import annotations

import doctest
import json
import sys

import faiss
import numpy as np
import pytest

import rag.faiss_index as faiss_index_module
import rag.id_table as id_table_module
import rag.index_checks as index_checks_module
import rag.vector_index as vector_index_module
from minillm.errors import InputError, MissingDependencyError
from rag.faiss_index import FaissIndex
from rag.vector_index import VectorIndex, create_index, open_index

DIM = 24


def gaussian(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)


def low_rank(n: int, dim: int, rank: int = 12, seed: int = 0) -> np.ndarray:
    """Embedding-like data: a rank-``rank`` signal plus a little noise (ANN indexes do well on it)."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, rank), dtype=np.float32) @ rng.standard_normal((rank, dim), dtype=np.float32)
    return signal + 0.1 * rng.standard_normal((n, dim), dtype=np.float32)


def reference(stored: np.ndarray, queries: np.ndarray, metric: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float64 over the vectors as stored (for cosine: normalised, then rounded to the storage
    dtype): (scores, row indices), best first."""
    x, q = stored.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "l2":
        scores = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
        order = np.argsort(scores, axis=1)[:, :k]
    else:
        scores = q @ x.T
        order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth, strict=True)]))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few hundred rows, so every search crosses many blocks and merges."""
    monkeypatch.setattr(vector_index_module, "SCORE_BUDGET", 2000)
    monkeypatch.setattr(vector_index_module, "FILL_ROWS", 16)
    monkeypatch.setattr(vector_index_module, "MIN_BLOCK_ROWS", 16)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_exact_search_equals_brute_force(metric, dtype, small_blocks):
    data, queries = gaussian(3000), gaussian(9, seed=1)
    index = VectorIndex(DIM, metric, dtype)
    index.add(data[:1700])
    index.add(data[1700:])
    stored = data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "cosine" else data
    ref_scores, ref_rows = reference(stored.astype(dtype), queries, metric, k=10)
    scores, ids = index.search(queries, k=10)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (9, 10)
    np.testing.assert_array_equal(ids, ref_rows)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-4)
    one_scores, one_ids = index.search(queries[3], k=10)  # (dim,) -> (1, k): the matrix-vector path
    np.testing.assert_array_equal(one_ids, ids[3:4])
    np.testing.assert_allclose(one_scores, scores[3:4], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_top_k_sets_identical_to_faiss_flat(metric):
    data, queries = gaussian(20000, dim=64, seed=2), gaussian(50, dim=64, seed=3)
    ref = faiss.IndexFlatL2(64) if metric == "l2" else faiss.IndexFlatIP(64)
    ref.add(data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "cosine" else data)
    ref_scores, ref_ids = ref.search(queries / np.linalg.norm(queries, axis=1, keepdims=True)
                                     if metric == "cosine" else queries, 10)
    index = VectorIndex(64, metric)
    index.add(data)
    scores, ids = index.search(queries, k=10)
    assert all(set(a) == set(b) for a, b in zip(ids, ref_ids, strict=True))
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-4)


def test_float16_storage_keeps_recall_of_float32():
    data, queries = gaussian(5000, dim=64), gaussian(50, dim=64, seed=4)
    exact, half = VectorIndex(64), VectorIndex(64, dtype=np.float16)
    exact.add(data)
    half.add(data)
    assert half._tail.view.dtype == np.float16
    assert recall(half.search(queries, 10)[1], exact.search(queries, 10)[1]) >= 0.98


def test_ids_default_explicit_duplicates_and_remove(small_blocks):
    index = VectorIndex(DIM, "ip")
    assert index.add(gaussian(3), ids=[7, 3, 100]).tolist() == [7, 3, 100]
    assert index.add(gaussian(2, seed=1)).tolist() == [101, 102]  # numbering goes on from the largest id
    assert index.add(np.zeros((0, DIM))).tolist() == []
    with pytest.raises(InputError, match="id 3 is already in the index"):
        index.add(gaussian(1), ids=[3])
    with pytest.raises(InputError, match="id 5 appears more than once"):
        index.add(gaussian(2), ids=[5, 5])
    assert index.remove([3, 101, 999]) == 2  # unknown ids are ignored, not counted
    assert len(index) == 3 and index.ids.tolist() == [7, 100, 102]
    assert index.remove(3) == 0
    _, ids = index.search(gaussian(4, seed=9), k=3)
    assert sorted(ids[0].tolist()) == [7, 100, 102]  # k == len: every live vector, none of the removed
    index.add(gaussian(1, seed=5), ids=[3])  # a removed id may be used again
    assert index.ids.tolist() == [7, 100, 102, 3]


def test_ids_stay_consistent_through_many_adds_and_removes():
    rng, index, model = np.random.default_rng(5), VectorIndex(4, "ip"), {}
    for _ in range(300):
        if model and rng.random() < 0.3:
            gone = rng.choice(list(model), size=min(len(model), int(rng.integers(1, 4))), replace=False)
            assert index.remove(np.append(gone, 10**9)) == len(gone)
            for i in gone:
                del model[int(i)]
        else:
            ids = np.setdiff1d(rng.integers(0, 400, size=int(rng.integers(1, 5))), list(model))
            vectors = rng.standard_normal((len(ids), 4))
            index.add(vectors, ids=ids)
            model.update({int(i): v for i, v in zip(ids, vectors, strict=True)})
        assert sorted(index.ids.tolist()) == sorted(model) and len(index) == len(model)
    _, ids = index.search(np.ones(4), k=len(model))
    assert sorted(ids[0].tolist()) == sorted(model)
    with pytest.raises(InputError, match="already in the index"):
        index.add(np.ones((1, 4)), ids=[next(iter(model))])


def test_no_queries_give_empty_results_and_nbytes_leaves_out_mapped_rows(tmp_path):
    index = VectorIndex(DIM)
    index.add(gaussian(100))
    scores, ids = index.search(np.zeros((0, DIM)), k=3)
    assert scores.shape == ids.shape == (0, 3)
    assert index.nbytes >= 100 * DIM * 4
    index.save(tmp_path / "i")
    assert VectorIndex.load(tmp_path / "i").nbytes < 100 * DIM * 4 <= VectorIndex.load(tmp_path / "i", False).nbytes


def test_a_refused_batch_leaves_the_index_unchanged(monkeypatch):
    monkeypatch.setattr(vector_index_module, "ADD_ROWS", 100)
    index = VectorIndex(DIM, "l2")
    index.add(gaussian(50))
    bad = gaussian(300, seed=1)
    bad[250, 3] = np.inf
    with pytest.raises(InputError, match="row 250 of vectors holds NaN or infinity"):  # numbered in the batch
        index.add(bad)
    assert len(index) == 50 and index._tail.n == 50 and index._tail_half_sq.n == 50
    assert index.add(bad[:5]).tolist() == [50, 51, 52, 53, 54]


def test_remove_in_the_middle_of_blocks_matches_brute_force(small_blocks):
    data, queries = gaussian(2000), gaussian(5, seed=1)
    index = VectorIndex(DIM, "l2")
    index.add(data)
    gone = np.arange(0, 2000, 3)
    assert index.remove(gone) == len(gone)
    keep = np.setdiff1d(np.arange(2000), gone)
    _, ref_rows = reference(data[keep], queries, "l2", k=10)
    np.testing.assert_array_equal(index.search(queries, 10)[1], keep[ref_rows])


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_save_load_memory_mapped_then_add_and_save_again(tmp_path, metric):
    data, queries = gaussian(500), gaussian(4, seed=1)
    index = VectorIndex(DIM, metric, np.float16)
    index.add(data)
    index.remove([0, 1])
    before = index.search(queries, k=5)
    index.save(tmp_path / "index")
    assert json.loads((tmp_path / "index" / "index.json").read_text())["count"] == 498

    loaded = VectorIndex.load(tmp_path / "index")
    assert isinstance(loaded._base, np.memmap) and not loaded._base.flags.writeable
    assert (loaded.dim, loaded.metric, loaded.dtype, len(loaded)) == (DIM, metric, np.float16, 498)
    for got, want in zip(loaded.search(queries, k=5), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.add(gaussian(2, seed=7)).tolist() == [500, 501]  # into the in-memory tail
    loaded.remove([2])
    after = loaded.search(queries, k=5)
    loaded.save(tmp_path / "index")  # over the file it is memory-mapping
    again = VectorIndex.load(tmp_path / "index", mmap=False)
    assert not isinstance(again._base, np.memmap) and len(again) == 499
    assert again.ids.tolist() == loaded.ids.tolist()
    for got, want in zip(again.search(queries, k=5), after, strict=True):
        np.testing.assert_array_equal(got, want)


def test_k_larger_than_the_index_warns_and_returns_what_exists():
    index = VectorIndex(DIM)
    index.add(gaussian(4))
    with pytest.warns(UserWarning, match="k=10 is larger than the index .4 vectors.; returning 4"):
        scores, ids = index.search(gaussian(2, seed=1), k=10)
    assert scores.shape == ids.shape == (2, 4)
    assert (np.diff(scores, axis=1) <= 0).all()  # best first


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda i: i.add(np.ones((2, 5))), r"shape \(2, 5\); this index holds dim 24"),
        (lambda i: i.search(np.ones(7), 1), r"queries have shape \(7,\); this index holds dim 24"),
        (lambda i: VectorIndex(DIM).search(np.ones(DIM), 1), "the index is empty"),
        (lambda i: i.search(np.ones(DIM), 0), "k must be a positive integer; got 0"),
        (lambda i: i.add(np.full((1, DIM), np.nan)), "row 0 of vectors holds NaN"),
        (lambda i: i.add(np.zeros((2, DIM))), "row 0 of vectors is all zeros"),
        (lambda i: i.search(np.zeros(DIM), 1), "row 0 of queries is all zeros"),
        (lambda i: i.add(np.ones((1, DIM)), ids=[-4]), "id -4 is negative"),
        (lambda i: i.add(np.ones((1, DIM)), ids=[1.5]), "ids must be integers; got dtype float64"),
        (lambda i: i.add(np.ones((2, DIM)), ids=[1]), r"ids of shape \(1,\) for 2 vectors"),
        (lambda i: i.add([["a"] * DIM]), "vectors must be numbers"),
        (lambda i: VectorIndex(DIM, metric="dot"), "metric 'dot' is unknown; valid: cosine, ip, l2"),
        (lambda i: VectorIndex(DIM, dtype=np.int8), "dtype int8 is not supported"),
        (lambda i: VectorIndex(0), "dim must be a positive integer; got 0"),
        (lambda i: VectorIndex(DIM, "ip", np.float16).add(np.full((1, DIM), 1e6)), "beyond float16's range"),
        (lambda i: create_index(DIM, backend="annoy"), "backend 'annoy' is unknown"),
        (lambda i: create_index(DIM, backend="faiss-hnsw", nprobe=3), "option 'nprobe' does not apply"),
    ],
)
def test_bad_input_raises_one_line_naming_the_value(call, message):
    index = VectorIndex(DIM)
    index.add(gaussian(3))
    with pytest.raises(InputError, match=message) as error:
        call(index)
    assert "\n" not in str(error.value)


def _corrupt(directory, case: str) -> None:
    if case == "no index.json":
        (directory / "index.json").unlink()
    elif case == "foreign index.json":
        (directory / "index.json").write_text(json.dumps({"model_type": "llama"}))
    elif case == "not json":
        (directory / "index.json").write_text("{oops")
    elif case == "newer version":
        meta = json.loads((directory / "index.json").read_text())
        (directory / "index.json").write_text(json.dumps({**meta, "version": 99}))
    elif case == "bad metric":
        meta = json.loads((directory / "index.json").read_text())
        (directory / "index.json").write_text(json.dumps({**meta, "metric": "hamming"}))
    elif case == "truncated vectors":
        raw = (directory / "vectors.npy").read_bytes()
        (directory / "vectors.npy").write_bytes(raw[: len(raw) // 2])
    elif case == "pickled vectors":
        np.save(directory / "vectors.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "text as vectors":
        (directory / "vectors.npy").write_text("hello")
    elif case == "wrong shape":
        np.save(directory / "vectors.npy", np.zeros((3, DIM + 1), dtype=np.float32))
    elif case == "repeated ids":
        np.save(directory / "ids.npy", np.zeros(10, dtype=np.int64))
    elif case == "missing ids":
        (directory / "ids.npy").unlink()


@pytest.mark.parametrize("case", ["no index.json", "foreign index.json", "not json", "newer version", "bad metric",
                                  "truncated vectors", "pickled vectors", "text as vectors", "wrong shape",
                                  "repeated ids", "missing ids"])
def test_corrupt_or_foreign_directory_is_refused_in_one_line(tmp_path, case):
    index = VectorIndex(DIM)
    index.add(gaussian(10))
    index.save(tmp_path / "index")
    _corrupt(tmp_path / "index", case)
    with pytest.raises(InputError) as error:
        VectorIndex.load(tmp_path / "index")
    assert "\n" not in str(error.value) and "index" in str(error.value)
    with pytest.raises(InputError):
        open_index(tmp_path / "index")


def test_load_refuses_a_file_or_missing_path(tmp_path):
    (tmp_path / "vectors.npy").write_bytes(b"x")
    with pytest.raises(InputError, match="is not a directory"):
        VectorIndex.load(tmp_path / "vectors.npy")
    with pytest.raises(InputError, match="is not a directory"):
        VectorIndex.load(tmp_path / "absent")


@pytest.mark.slow
def test_faiss_hnsw_recall_at_10_and_save_load(tmp_path):
    data, queries = low_rank(20000, 64), low_rank(200, 64, seed=1)
    exact = VectorIndex(64)
    exact.add(data)
    truth = exact.search(queries, 10)[1]
    hnsw = create_index(64, backend="faiss-hnsw", m=16, ef_construction=64, ef_search=64)
    assert isinstance(hnsw, FaissIndex)
    hnsw.add(data)
    found = hnsw.search(queries, 10)[1]
    hnsw_recall = recall(found, truth)
    print(f"faiss HNSW16 efSearch=64 recall@10 on 20k x 64: {hnsw_recall:.3f}")
    assert hnsw_recall >= 0.9

    assert hnsw.remove(found[:, 0]) == len(np.unique(found[:, 0]))
    scores, ids = hnsw.search(queries, 10)
    assert not np.isin(found[:, 0], ids).any()
    hnsw.save(tmp_path / "hnsw")
    loaded = open_index(tmp_path / "hnsw")
    assert isinstance(loaded, FaissIndex) and (loaded.kind, len(loaded)) == ("hnsw", len(hnsw))
    for got, want in zip(loaded.search(queries, 10), (scores, ids), strict=True):
        np.testing.assert_array_equal(got, want)
    assert loaded.add(data[:2]).tolist() == [20000, 20001]


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_faiss_ivf_backend_same_interface(tmp_path, metric):
    data, queries = low_rank(4000, 32), low_rank(20, 32, seed=1)
    ivf = create_index(32, metric, backend="faiss-ivf", nlist=16, nprobe=16)  # every list probed: exact
    ids = ivf.add(data, ids=np.arange(4000) * 2)
    exact = VectorIndex(32, metric)
    exact.add(data, ids=ids)
    want_scores, want_ids = exact.search(queries, 5)
    got_scores, got_ids = ivf.search(queries, 5)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-4, atol=1e-4)
    small = create_index(32, metric, np.float16, backend="faiss-ivf", nlist=2)
    small.add(data[:3])
    with pytest.warns(UserWarning, match="larger than the index"):
        found = small.search(queries[0], 5)[1]
    assert found.shape == (1, 3)
    ivf.remove(want_ids[:, 0])
    ivf.save(tmp_path / "ivf")
    loaded = FaissIndex.load(tmp_path / "ivf")
    assert loaded.options["nlist"] == 16 and not np.isin(want_ids[:, 0], loaded.search(queries, 5)[1]).any()


@pytest.mark.parametrize("case", ["foreign index.json", "truncated index.faiss", "wrong rows", "repeated ids"])
def test_faiss_corrupt_directory_is_refused_in_one_line(tmp_path, case):
    index = FaissIndex(8, kind="hnsw")
    index.add(gaussian(20, dim=8))
    index.save(tmp_path / "f")
    if case == "foreign index.json":
        (tmp_path / "f" / "index.json").write_text(json.dumps({"format": "chroma"}))
    elif case == "truncated index.faiss":
        raw = (tmp_path / "f" / "index.faiss").read_bytes()
        (tmp_path / "f" / "index.faiss").write_bytes(raw[:100])
    elif case == "wrong rows":
        np.save(tmp_path / "f" / "ids.npy", np.arange(5, dtype=np.int64))
    else:
        np.save(tmp_path / "f" / "ids.npy", np.zeros(20, dtype=np.int64))
    with pytest.raises(InputError) as error:
        FaissIndex.load(tmp_path / "f")
    assert "\n" not in str(error.value)


def test_faiss_missing_is_a_missing_dependency_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError, match="pip install faiss-cpu"):
        create_index(8, backend="faiss-hnsw")


def test_open_index_dispatches_on_index_json(tmp_path):
    exact = create_index(8, "ip")
    exact.add(gaussian(5, dim=8))
    exact.save(tmp_path / "exact")
    assert type(open_index(tmp_path / "exact", mmap=False)) is VectorIndex
    with pytest.raises(InputError, match="expected minillm-faiss-index"):
        FaissIndex.load(tmp_path / "exact")


def test_docstring_examples_run():
    for module in (vector_index_module, faiss_index_module, id_table_module, index_checks_module):
        assert doctest.testmod(module).failed == 0
