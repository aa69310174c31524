"""Fixtures for the tokenizer tests: SmolLM2's tokenizer folder (built once per run), corpora, trained tokenizers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# HF's Rust code must stay single-threaded on this shared machine and silent about forking.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: A small corpus embedded in the tests (no shared data needed): prose with repeats, digits, Unicode.
SMALL_CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!",
    "She sells sea shells by the sea shore, and the shells she sells are sea shells, I'm sure.",
    "In 2024, 1,234 people paid $56.78 each -- that's 70,070.52 dollars in total.",
    "Ünïcödé wörds: naïve café, résumé, jalapeño, Größe, Ελληνικά, русский, 日本語のテキスト, 한국어 문장.",
    "Emoji 😀🎉 and symbols ∑∫√ mixed with code: def f(x): return x ** 2  # square\n\tindented\r\n",
    "Don't won't can't shouldn't they're we've I'll he'd it's  double  spaces   and\n\n\nnewlines.",
] * 20


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf: Path, tmp_path_factory) -> Path:
    """SmolLM2's tokenizer folder, converted from the GGUF by transformers once per run (or per cache)."""
    root = Path(os.environ.get("MINILLM_TEST_CACHE", tmp_path_factory.getbasetemp() / "minillm-cache"))
    folder = root / "smollm2-tokenizer"
    if not (folder / "tokenizer.json").is_file():
        transformers = pytest.importorskip("transformers")
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name
        )
        tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def hf_smollm2(smollm2_dir: Path):
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))


@pytest.fixture(scope="session")
def our_smollm2(smollm2_dir: Path):
    from tokenizers_bpe import BPETokenizer

    return BPETokenizer.load(smollm2_dir)


@pytest.fixture(scope="session")
def shakespeare_text(shared_data: Path) -> str:
    return (shared_data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def pubmed_contexts(shared_data: Path) -> list[str]:
    records = json.loads((shared_data / "pubmedqa" / "pqal_dev500.json").read_text(encoding="utf-8"))
    return [context for record in records.values() for context in record["CONTEXTS"]]


@pytest.fixture(scope="session")
def small_corpus() -> list[str]:
    return list(SMALL_CORPUS)


@pytest.fixture(scope="session")
def small_tokenizer():
    """Our tokenizer trained on SMALL_CORPUS (vocab 400, GPT-4 pattern, default special tokens)."""
    from tokenizers_bpe import BPETokenizer

    return BPETokenizer(vocab_size=400, show_progress=False).train(SMALL_CORPUS)
