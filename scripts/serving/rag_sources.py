"""``--index_path``: retrieval for /predict and chat completions, and the ``sources`` they return.

/predict builds its prompt with :meth:`rag.rag_model.RAGModel.build_prompt` (numbered passages fitted into the
context in tokens, the question never cut). A chat completion retrieves on the last user message and replaces
that message by the sources block and the question (:func:`rag.prompting.user_message`), keeping the turns before
it; passages are left out from the last while the prompt does not fit. Each answer carries ``sources``: ``[{"n",
"title", "source", "text" (a snippet), "score"}]`` (OpenAI clients ignore this extra top-level field).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.prompting import SYSTEM_PROMPT, Passage, user_message

from .served_models import ServedModel

SNIPPET = 220  # characters of a source's text in the response
DEFAULT_TOP_K = 3


def open_index(path: str | Path) -> Any:
    """The SimpleDocumentStore saved at ``path`` (its embedder rebuilt from the store's metadata)."""
    from rag.document_store import SimpleDocumentStore

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no index at {str(path)!r}; build one first: python main.py rag build --docs "
                                f"DIR_OR_FILE --index_path {path}")
    return SimpleDocumentStore.load(str(path))


def snippet(text: str, limit: int = SNIPPET) -> str:
    """``text`` on one line, cut at a word boundary to about ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit].rsplit(" ", 1)[0] + " ..."


def source_json(source: Any) -> dict[str, Any]:
    """A :class:`rag.answers.Source` as the response lists it."""
    meta = source.metadata or {}
    return {"n": source.number, "title": meta.get("title"), "source": meta.get("source"),
            "text": snippet(source.text), "score": round(float(source.score), 6)}


class Retrieval:
    """Prompts with retrieved passages for one served model over one document store."""

    def __init__(self, store: Any, served: ServedModel, top_k: int = DEFAULT_TOP_K) -> None:
        self.store, self.served, self.top_k = store, served, top_k

    def predict_prompt(self, question: str, max_tokens: int) -> tuple[list[int], list[dict[str, Any]]]:
        """The RAG prompt's ids for ``question`` leaving ``max_tokens`` for the answer, and its sources."""
        from rag.rag_model import RAGModel

        rag = RAGModel(self.store, self.served.model, self.served.tokenizer,
                       context_length=self.served.context_length)
        fitted, sources = rag.build_prompt(question, self.top_k, max_length=max_tokens)
        return list(fitted.ids), [source_json(s) for s in sources]

    def chat_prompt(self, messages: Sequence[dict[str, str]],
                    max_tokens: int) -> tuple[list[int], list[dict[str, Any]]]:
        """The chat's ids with the passages for its last user message, and the sources that fit."""
        from rag.rag_model import retrieve_sources

        last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if last is None or not messages[last]["content"].strip():
            return self.served.encode_chat(messages), []
        question = messages[last]["content"]
        found = retrieve_sources(self.store, question, self.top_k)
        history = list(messages)
        if not any(m["role"] in ("system", "developer") for m in history):
            history.insert(0, {"role": "system", "content": SYSTEM_PROMPT})
            last += 1
        budget = self.served.context_length - max_tokens
        while True:
            passages = [Passage(s.number, s.text, s.metadata.get("title")) for s in found]
            turn = {"role": "user", "content": user_message(question, passages)}
            ids = self.served.encode_chat([*history[:last], turn, *history[last + 1:]])
            if len(ids) <= budget or not found:
                return ids, [source_json(s) for s in found]
            found = found[:-1]
