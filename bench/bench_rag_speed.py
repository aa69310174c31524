"""Exact vector search speed, ours (rag.VectorIndex) against faiss IndexFlatIP, in one process (CPU).

For each collection size (default 200k and 1M seeded random unit vectors of dim 384): top-10 of 100 queries
in one batch and of 50 queries one at a time, ours against faiss ``IndexFlatIP`` at its fastest setting
(``faiss.cvar.distance_compute_blas_threshold = 20``, so the batch takes its BLAS path; faiss is timed with all
OpenMP threads and with one, and the faster counts), the ratio of times (ours / faiss: below 1 is faster), whether
the top-10 id sets are identical, and memory (resident growth of each index, the peak extra while searching the
batch). Rounds alternate (ours, faiss, ours, ...) so background load hits both alike; the figure is the best
round. Then a saved 1M index opened memory-mapped (open time, resident growth, first search), and the faiss HNSW
backend (build time, batch and single search time, recall@10 against exact) on ``--hnsw_size`` vectors, twice:
random unit vectors (the worst case for a graph index) and embedding-like ones (near a rank-32 subspace, as real
embeddings have a low intrinsic dimension).

Writes bench/results/bench_rag_speed.json (``--out`` to change, ``--out ''`` for none).
Usage: python bench/bench_rag_speed.py [--sizes 200000 1000000] [--dim 384] [--repeats 2] [--hnsw_size 10000]
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import platform
import tempfile
import time
import tracemalloc
from pathlib import Path

import faiss
import numpy as np

from rag.faiss_index import FaissIndex
from rag.vector_index import VectorIndex

K = 10
MB = 1 << 20


def machine() -> str:
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"numpy {np.__version__} ({blas['name']} {blas.get('version', '')}), faiss {faiss.__version__} "
            f"({faiss.omp_get_max_threads()} OpenMP threads), python {platform.python_version()}, {cpu}, "
            f"{os.cpu_count()} cores, load average at start {load}")


def numpy_blas_threads():
    """A setter for the thread count of numpy's bundled OpenBLAS (what threadpoolctl does), or None."""
    names = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads")
    for path in glob.glob(str(Path(np.__file__).parent.parent / "numpy.libs" / "*openblas*.so*")):
        lib = ctypes.CDLL(path)
        for name in names:
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` seeded random unit vectors, made 100k rows at a time (no float64 temporaries)."""
    rng, out = np.random.default_rng(seed), np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss() -> tuple[int, int]:
    """(resident bytes now, peak resident bytes since the last reset)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def measured(fn):
    """(fn(), resident growth, peak extra above the start): the peak reset through /proc/self/clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    before, _ = rss()
    result = fn()
    after, peak = rss()
    return result, after - before, max(peak - before, 0)


def best_of(fns: dict, repeats: int, warm_up: bool = True, results: dict | None = None) -> dict:
    """Best wall time of each callable, in alternating rounds (after one warm-up call each); the last result of
    each goes into ``results``."""
    for fn in fns.values() if warm_up else ():
        fn()
    times, results = {name: [] for name in fns}, {} if results is None else results
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def same_sets(a: np.ndarray, b: np.ndarray) -> bool:
    return all(set(x) == set(y) for x, y in zip(a, b, strict=True))


def traced_peak(fn) -> int:
    """Peak bytes numpy allocated while ``fn`` ran (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def speed_rows(n: int, dim: int, repeats: int, singles: int, queries: np.ndarray, keep: dict) -> list[dict]:
    """The batched and the one-at-a-time rows for ``n`` vectors, each side at every thread count."""
    data = unit_vectors(n, dim, seed=n)
    ours, ref = _built_ours(data, dim), _built_faiss(data, dim)
    keep["data"], keep["ours"] = data, ours
    cores, set_blas = faiss.omp_get_max_threads(), numpy_blas_threads()
    settings = sorted({cores, 1}, reverse=True)

    def ours_at(threads: int, q: np.ndarray):
        if set_blas is not None:
            set_blas(threads)
        return ours.search(q, K)

    def ref_at(threads: int, q: np.ndarray):
        faiss.omp_set_num_threads(threads)
        return ref.search(q if q.ndim == 2 else q[None, :], K)

    runs = {f"{side} {t}t": (lambda q, f=f, t=t: f(t, q)) for t in settings if set_blas or t == cores
            for side, f in (("ours", ours_at), ("faiss", ref_at))}
    ours.search(queries, K), ref.search(queries, K)  # warm-up: page in both indexes
    got_batch, got_one = {}, {}
    batch = best_of({name: (lambda r=r: r(queries)) for name, r in runs.items()}, repeats, False, got_batch)
    # one query: faiss takes its sequential path on min(nq, threads) = 1 thread whatever the setting, so it is
    # timed once and stands for every setting
    singles_runs = {name: r for name, r in runs.items() if name.startswith("ours") or name == f"faiss {cores}t"}
    one = best_of({name: (lambda r=r: [r(q) for q in queries[:singles]]) for name, r in singles_runs.items()},
                  repeats, False, got_one)
    for t in settings:
        one[f"faiss {t}t"], got_one[f"faiss {t}t"] = one[f"faiss {cores}t"], got_one[f"faiss {cores}t"]
    ours_at(cores, queries[:1]), ref_at(cores, queries[:1])  # back to the defaults
    rows = []
    for label, times, per in ((f"{len(queries)} queries batched", batch, 1), (f"{singles} single queries, per query", one,
                                                                            singles)):
        best_ours = min((k for k in times if k.startswith("ours")), key=times.get)
        best_ref = min((k for k in times if k.startswith("faiss")), key=times.get)
        rows.append({"benchmark": f"top-{K}, n={n:,}, {label}",
                     "n": n, "dim": dim, "ours_ms": times[best_ours] * 1e3 / per, "ours_setting": best_ours,
                     "faiss_ms": times[best_ref] * 1e3 / per, "faiss_setting": best_ref,
                     "default_threads_ratio": round(times[f"ours {cores}t"] / times[f"faiss {cores}t"], 3),
                     "all_settings_ms": {k: round(v * 1e3 / per, 2) for k, v in times.items()}})
    rows[1]["faiss_setting"] = "faiss 1t"  # its sequential path, whatever the setting
    rows[0]["identical_sets"] = all(same_sets(got_batch[f"ours {t}t"][1], got_batch[f"faiss {t}t"][1])
                                    for t in settings if f"ours {t}t" in got_batch)
    rows[1]["identical_sets"] = all(same_sets(a[1], b[1]) for t in settings if f"ours {t}t" in got_one
                                    for a, b in zip(got_one[f"ours {t}t"], got_one[f"faiss {t}t"], strict=True))
    memory = {"ours_index_mb": round(ours.nbytes / MB), "faiss_index_mb": round(ref.ntotal * ref.code_size / MB),
              "ours_search_peak_mb": round(traced_peak(lambda: ours.search(queries, K)) / MB, 1),
              "faiss_search_peak_rss_mb": round(measured(lambda: ref.search(queries, K))[2] / MB, 1)}
    for row in rows:
        row.update(memory)
    return rows


def _built_ours(data: np.ndarray, dim: int) -> VectorIndex:
    index = VectorIndex(dim, metric="ip")  # unit vectors: ip == cosine, the same work as IndexFlatIP
    index.add(data)
    return index


def _built_faiss(data: np.ndarray, dim: int):
    faiss.cvar.distance_compute_blas_threshold = 20
    index = faiss.IndexFlatIP(dim)
    index.add(data)
    return index


def mmap_row(index: VectorIndex, queries: np.ndarray) -> dict:
    """Save ``index``, open it memory-mapped: open time, resident growth, first and second batch search."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index.save(Path(tmp) / "index")
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded, grown, _ = measured(lambda: VectorIndex.load(Path(tmp) / "index"))
        open_ms = (time.perf_counter() - start) * 1e3
        times = []
        for _ in range(2):
            start = time.perf_counter()
            loaded.search(queries, K)
            times.append((time.perf_counter() - start) * 1e3)
        del loaded
    return {"n": len(index), "save_s": round(save_s, 2), "open_ms": round(open_ms, 1), "open_rss_mb": round(grown / MB),
            "first_search_ms": round(times[0], 1), "second_search_ms": round(times[1], 1),
            "note": "the saved file was just written, so the page cache holds it: 'first search' is warm-cache"}


def embedding_like(n: int, dim: int, seed: int, rank: int = 32) -> np.ndarray:
    """Unit vectors near a rank-``rank`` subspace (real embeddings have a low intrinsic dimension)."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(0).standard_normal((rank, dim), dtype=np.float32)
    x = rng.standard_normal((n, rank), dtype=np.float32) @ basis + 0.3 * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def hnsw_row(data: np.ndarray, queries: np.ndarray, singles: int, kind: str) -> dict:
    """The faiss HNSW backend on ``data``: build and search times, memory, recall@10 against exact search."""
    exact = VectorIndex(data.shape[1], metric="ip")
    exact.add(data)
    truth = exact.search(queries, K)[1]
    hnsw = FaissIndex(data.shape[1], metric="ip", kind="hnsw")
    start = time.perf_counter()
    _, grown, _ = measured(lambda: hnsw.add(data))
    build_s = time.perf_counter() - start
    times = best_of({"batch": lambda: hnsw.search(queries, K),
                     "single": lambda: [hnsw.search(q, K) for q in queries[:singles]]}, repeats=2)
    found = hnsw.search(queries, K)[1]
    exact_times = best_of({"batch": lambda: exact.search(queries, K)}, repeats=2)
    return {"data": kind, "n": len(data), "options": hnsw.options, "build_s": round(build_s, 2), "index_mb": round(grown / MB),
            "batch_ms": round(times["batch"] * 1e3, 2), "single_ms": round(times["single"] * 1e3 / singles, 3),
            "exact_batch_ms": round(exact_times["batch"] * 1e3, 2),
            "recall_at_10": round(float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth)])), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--singles", type=int, default=50)
    parser.add_argument("--hnsw_size", type=int, default=10_000, help="0: no HNSW rows")
    parser.add_argument("--no_mmap", action="store_true", help="skip saving and reopening the largest index")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_rag_speed.json"))
    args = parser.parse_args()
    info = machine()
    queries = unit_vectors(args.batch, args.dim, seed=1)
    rows, keep, mmap, hnsw = [], {}, None, []
    for n in args.sizes:
        rows += speed_rows(n, args.dim, args.repeats, args.singles, queries, keep)
        if n == max(args.sizes) and not args.no_mmap:
            mmap = mmap_row(keep["ours"], queries)
        if n == min(args.sizes) and args.hnsw_size:
            hnsw = [hnsw_row(keep["data"][: args.hnsw_size], queries, args.singles, "random unit vectors")]
        keep.clear()
    if args.hnsw_size:
        hnsw.append(hnsw_row(embedding_like(args.hnsw_size, args.dim, seed=2), embedding_like(args.batch, args.dim, 3),
                             args.singles, "embedding-like (rank 32 + noise)"))

    print(f"\n{info}")
    print(f"{'benchmark':<44} {'ours ms':>9} {'faiss ms':>9} {'ratio':>6} {'(threads)':>11} {'default':>7} "
          f"{'same':>5}  memory ours/faiss MB")
    for r in rows:
        threads = f"{r['ours_setting'].split()[1]}/{r['faiss_setting'].split()[1]}"
        memory = (f"{r['ours_index_mb']}/{r['faiss_index_mb']} index, +{r['ours_search_peak_mb']}/"
                  f"+{r['faiss_search_peak_rss_mb']} searching")
        print(f"{r['benchmark']:<44} {r['ours_ms']:>9.2f} {r['faiss_ms']:>9.2f} {r['ours_ms'] / r['faiss_ms']:>5.2f}x "
              f"{threads:>11} {r['default_threads_ratio']:>6.2f}x {'yes' if r['identical_sets'] else 'NO':>5}  {memory}")
    print("ratio: ours / faiss, each at its fastest thread count (shown ours/faiss); default: both at all cores")
    if mmap:
        print(f"memory-mapped open of n={mmap['n']:,}: {mmap['open_ms']} ms, +{mmap['open_rss_mb']} MB resident; "
              f"first batch search {mmap['first_search_ms']} ms, second {mmap['second_search_ms']} ms")
    for h in hnsw:
        print(f"faiss HNSW (m={h['options']['m']}, efConstruction={h['options']['ef_construction']}, efSearch="
              f"{h['options']['ef_search']}), {h['data']}, n={h['n']:,}: build {h['build_s']} s, batch "
              f"{h['batch_ms']} ms (exact {h['exact_batch_ms']} ms), single {h['single_ms']} ms, "
              f"recall@10 {h['recall_at_10']}")
    if args.out:
        from minillm.atomic import atomic_write_text

        for r in rows:
            r.update(ours_ms=round(r["ours_ms"], 2), faiss_ms=round(r["faiss_ms"], 2),
                     ratio=round(r["ours_ms"] / r["faiss_ms"], 3))
        results = {"machine": info, "load_average_at_end": [round(x, 1) for x in os.getloadavg()], "rows": rows,
                   "mmap": mmap, "hnsw": hnsw}
        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
