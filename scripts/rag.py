"""rag: build a document index, then answer questions over it with numbered sources.

``rag build --docs DIR_OR_FILE --index_path PATH`` reads .txt/.md files, .pdf and .epub papers (cleaned text through
:mod:`rag.readers`; a scanned, encrypted or broken one is skipped with a warning), and .jsonl (one document per line
with a text field; other formats through :func:`rag.corpus.register_reader`), splits them (:mod:`rag.chunking`), embeds
the chunks with a progress bar and saves a :class:`rag.document_store.SimpleDocumentStore`. ``rag ask --index_path
PATH --query "..."`` retrieves the best passages and streams a cited answer from a model (default SmolLM2), then
prints the numbered sources; ``--retrieve_only`` prints the passages and loads no model. With no action, the shipped
PubMedQA dev abstracts (``rag/sample_data``) are indexed once into the cache and a question is answered over them.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from minillm.errors import InputError

EXAMPLES = """examples:
  python main.py rag                                    # index the shipped PubMedQA abstracts once, ask SmolLM2
  python main.py rag --query "Does aspirin prevent stroke?"          # the same index, your question
  python main.py rag build --docs notes/ --index_path indexes/notes  # .txt/.md/.pdf/.epub (recursively), .jsonl
  python main.py rag build --docs papers.jsonl --text_field abstract --index_path indexes/papers --embedder hashed
  python main.py rag ask --index_path indexes/notes --query "What is RAG?"
  python main.py rag ask --index_path indexes/notes --query "What is RAG?" --retrieve_only --top_k 5
  python main.py rag ask --index_path indexes/notes --query "..." --model_path checkpoints/run/best --temperature 0
"""

ACTIONS = ("build", "ask")
EMBEDDERS = ("minilm", "hashed")
SAMPLE = Path(__file__).resolve().parent.parent / "rag" / "sample_data" / "pubmedqa_dev.jsonl"
DEFAULT_QUERY = "Can tailored interventions increase mammography use among HMO women?"
SNIPPET = 220  # characters of each source shown under an answer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=ACTIONS, default=None,
                        help="build an index or ask a question (default: build the PubMedQA sample once, then ask)")
    parser.add_argument("--index_path", default=None, help="the index folder (default: the cached sample index)")
    build = parser.add_argument_group("build")
    build.add_argument("--docs", default=None, help="a file or folder of .txt/.md/.pdf/.epub/.jsonl documents "
                                                    "(default: the shipped PubMedQA dev abstracts)")
    build.add_argument("--text_field", default="text", help="the JSONL field holding each document's text")
    build.add_argument("--embedder", choices=EMBEDDERS, default="minilm",
                       help="minilm: all-MiniLM-L6-v2 through our encoder; hashed: fast word/character n-grams")
    build.add_argument("--embedding_dim", type=int, default=256, help="width of the hashed embedder")
    build.add_argument("--split_method", default="semantic",
                       help="paragraph, sentence, chunk, semantic, regex, or tokens (windows of the embedder's "
                            "tokens: the lengths then count tokens); see rag.chunking")
    build.add_argument("--max_chunk_length", type=int, default=1500, help="most characters in a chunk")
    build.add_argument("--min_chunk_length", type=int, default=500,
                       help="shorter pieces join a neighbour when the two fit --max_chunk_length")
    build.add_argument("--overlap", type=int, default=0, help="characters a chunk repeats from the one before")
    build.add_argument("--batch_size", type=int, default=32, help="texts embedded at once")
    ask = parser.add_argument_group("ask")
    ask.add_argument("--query", default=None, help="the question")
    ask.add_argument("--top_k", type=int, default=3, help="passages to retrieve")
    ask.add_argument("--retrieve_only", action="store_true", help="print the passages; load no model")
    ask.add_argument("--model_path", default="smollm2",
                     help="checkpoint, HF directory, .gguf file or alias (default: smollm2)")
    ask.add_argument("--tokenizer_path", default=None, help="tokenizer.json or a directory holding one")
    ask.add_argument("--max_new_tokens", type=int, default=200, help="most tokens in the answer")
    ask.add_argument("--temperature", type=float, default=0.3, help="0 means greedy decoding")
    ask.add_argument("--repetition_penalty", type=float, default=1.1)
    ask.add_argument("--context_length", type=int, default=None,
                     help="tokens of prompt + answer (default: the model's context size)")
    ask.add_argument("--seed", type=int, default=None)
    ask.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--verbose", action="store_true")


def _check(args: argparse.Namespace) -> None:
    """One InputError naming a flag that is out of range."""
    checks = [
        ("top_k", args.top_k >= 1, "an integer >= 1"),
        ("max_new_tokens", args.max_new_tokens >= 1, "an integer >= 1"),
        ("temperature", args.temperature >= 0, ">= 0 (0 means greedy decoding)"),
        ("repetition_penalty", args.repetition_penalty > 0, "> 0 (1 means no penalty)"),
        ("batch_size", args.batch_size >= 1, "an integer >= 1"),
        ("embedding_dim", args.embedding_dim >= 1, "an integer >= 1"),
        ("max_chunk_length", args.max_chunk_length >= 1, "an integer >= 1"),
        ("min_chunk_length", 0 <= args.min_chunk_length <= args.max_chunk_length, "from 0 to --max_chunk_length"),
        ("overlap", 0 <= args.overlap < args.max_chunk_length, "from 0 to below --max_chunk_length"),
    ]
    for name, valid, expected in checks:
        if not valid:
            raise InputError(f"--{name} {getattr(args, name)!r} is out of range; it must be {expected}")
    if args.query is not None and not args.query.strip():
        raise InputError("--query is empty; give the question to answer")


def default_index(embedder: str) -> Path:
    """Where the sample index is cached (one per embedder)."""
    from minillm.cache_dir import cache_dir

    return cache_dir() / "rag" / f"pubmedqa-dev-v2-{embedder}"


def _store_class() -> Any:
    from rag.document_store import SimpleDocumentStore

    return SimpleDocumentStore


def build_index(args: argparse.Namespace, docs: Path, index_path: Path) -> Any:
    """Read, split, embed and save; returns the store."""
    from rag.corpus import list_documents, load_corpus
    from rag.splitters import DocumentProcessor

    list_documents(docs)  # a missing or unreadable --docs fails before the embedder loads

    store_class, options = _store_class(), {}
    if args.embedder == "minilm":
        from rag.encoder_embedder import EncoderEmbedder

        embedder = EncoderEmbedder.from_pretrained("minilm", device=_device(args))
        # hybrid (MiniLM + BM25, reciprocal rank fusion): the best mean recall@5 of bench/bench_rag.py
        store = store_class(embedding_dim=embedder.dim, embedder=embedder, retriever="hybrid")
        options["tokenizer"] = embedder.tokenizer  # for --split_method tokens: the embedder's own tokens
    else:
        store = store_class(embedding_dim=args.embedding_dim)
    if args.split_method == "tokens" and "tokenizer" not in options:
        raise InputError("--split_method tokens counts the embedder's tokens; use it with --embedder minilm")
    processor = DocumentProcessor(method=args.split_method, min_length=args.min_chunk_length,
                                  max_length=args.max_chunk_length, overlap=args.overlap, **options)
    corpus = load_corpus(docs, processor, text_field=args.text_field, progress=True)
    if not corpus.texts:
        raise InputError(f"{str(docs)!r} gave no chunks (every document is shorter than --min_chunk_length "
                         f"{args.min_chunk_length})")
    store.add_documents(corpus.texts, metadata=corpus.metadata)
    store.compute_embeddings(batch_size=args.batch_size, show_progress=True)
    store.save(str(index_path))
    skipped = f"; skipped {sum(corpus.skipped.values())} file(s) with no reader" if corpus.skipped else ""
    if corpus.unreadable:
        skipped += f"; skipped {len(corpus.unreadable)} unreadable PDF/EPUB file(s)"
    print(f"indexed {len(corpus.texts)} chunks from {corpus.documents} document(s) in {corpus.files} file(s) "
          f"into {index_path}{skipped}", file=sys.stderr)
    return store


def _device(args: argparse.Namespace) -> str:
    from minillm.devices import resolve_device

    return str(resolve_device(args.device))


def open_index(index_path: Path) -> Any:
    if not index_path.exists():
        raise FileNotFoundError(f"no index at {str(index_path)!r}; build one first: python main.py rag build "
                                f"--docs DIR_OR_FILE --index_path {index_path}")
    return _store_class().load(str(index_path))


def print_passages(sources: list[Any]) -> None:
    for source in sources:
        print(f"[{source.number}] {_label(source)} (score {source.score:.3f})")
        print(textwrap.indent(source.text.strip(), "    "))
        print()


def _label(source: Any) -> str:
    meta = source.metadata
    where = meta.get("source")
    if where is not None and "chunk" in meta:
        where = f"{where}, chunk {meta['chunk']}"
    parts = [str(p) for p in (meta.get("title"), where) if p]
    return " - ".join(parts) or f"document {source.doc_id}"


def answer(args: argparse.Namespace, store: Any, query: str) -> None:
    """Stream the answer to stdout, then the numbered sources."""
    from minillm.hf.streaming import can_generate
    from rag.rag_model import RAGModel
    from training.model_extraction import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(args.model_path, tokenizer_path=args.tokenizer_path,
                                                device=_device(args))
    if tokenizer is None:
        raise InputError(f"{args.model_path} has no tokenizer.json; pass --tokenizer_path")
    if not can_generate(model):
        raise InputError(f"{args.model_path} holds a {type(model).__name__}, which does not generate text; "
                         "use a decoder checkpoint or a causal LM")
    rag = RAGModel(store, model, tokenizer, context_length=args.context_length)
    stream = rag.stream(query=query, top_k=args.top_k, max_length=args.max_new_tokens,
                        temperature=args.temperature, repetition_penalty=args.repetition_penalty, seed=args.seed)
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if not stream.sources:
        print("\n(no sources: the index returned nothing)")
        return
    print("\nSources:")
    for source in stream.sources:
        cut = " [cut to fit the context]" if source.truncated else ""
        snippet = " ".join(source.text.split())
        snippet = snippet if len(snippet) <= SNIPPET else snippet[:SNIPPET].rsplit(" ", 1)[0] + " ..."
        print(f"[{source.number}] {_label(source)} (score {source.score:.3f}){cut}")
        print(textwrap.indent(textwrap.fill(snippet, 100), "    "))


def main(args: argparse.Namespace) -> int:
    from rag.rag_model import retrieve_sources

    _check(args)
    sample_index = default_index(args.embedder)
    if args.action == "build":
        docs = Path(args.docs) if args.docs is not None else SAMPLE
        if args.index_path is None and args.docs is not None:
            raise InputError("rag build needs --index_path PATH: the folder to write the index to")
        build_index(args, docs, Path(args.index_path) if args.index_path else sample_index)
        return 0
    if args.action == "ask" and args.index_path is None:
        raise InputError("rag ask needs --index_path PATH (an index written by: python main.py rag build ...)")
    if args.action == "ask" and args.query is None:
        raise InputError('rag ask needs --query "..." (the question to answer)')
    if args.action is None and args.docs is not None:
        raise InputError("--docs goes with the build action: python main.py rag build --docs ... --index_path ...")
    index_path = Path(args.index_path) if args.index_path else sample_index
    if args.action is None and args.index_path is None and not index_path.exists():
        print(f"[indexing the shipped PubMedQA dev abstracts once, into {index_path}]", file=sys.stderr)
        store = build_index(args, SAMPLE, index_path)
    else:
        store = open_index(index_path)
    query = args.query if args.query is not None else DEFAULT_QUERY
    if args.action is None:
        print(f"Question: {query}\n")
    if args.retrieve_only:
        print_passages(retrieve_sources(store, query, args.top_k))
        return 0
    answer(args, store, query)
    return 0
