"""RAGModel: retrieve passages from a document store, fit them into a language model's context, answer with
citations ([1], [2]) and return the answer with the sources it was given.

The model only needs the generate protocol of GUIDE section 2 (``model.generate(input_ids, max_new_tokens=...,
do_sample=..., temperature=..., top_k=..., top_p=..., eos_token_id=...)`` returning prompt + new ids): our
``DecoderOnlyModel``, a transformers causal LM, a peft model. Streaming uses the model's own ``stream``
(ours), :mod:`minillm.hf.streaming` for a transformers model, else one piece after ``generate``.

The tokenizer (``encode``/``decode``/``eos_token_id``/``apply_chat_template``, ours or ``HFTokenizer``) is the
one passed, else ``model.tokenizer``, else the one saved in ``model.name_or_path`` (transformers sets it; the
original docs' ``RAGModel(doc_store, model)`` relies on it), else an InputError saying to pass it. The prompt
(:mod:`rag.prompting`) goes through the tokenizer's chat template when it has one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from minillm.errors import InputError

from .answers import RAGAnswer, RAGStream, Source
from .prompting import SYSTEM_PROMPT, FittedPrompt, chat_template_of, fit_prompt

logger = logging.getLogger(__name__)

__all__ = ["RAGAnswer", "RAGModel", "RAGStream", "Source", "find_tokenizer", "model_context_length",
           "retrieve_sources"]

# End-of-turn tokens of common chat formats: generation stops at them as at eos.
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")


def model_context_length(model: Any) -> int | None:
    """The model's context size: ``config.max_seq_len`` (ours) or ``max_position_embeddings`` (transformers,
    looked up through peft's ``get_base_model()``), or None when the config names neither."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    config = getattr(base, "config", None)
    for key in ("max_seq_len", "max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def retrieve_sources(doc_store: Any, query: str, top_k: int = 3, filter: Any = None) -> list[Source]:
    """``doc_store.search(query, top_k=...)`` as numbered :class:`Source` objects (no model needed)."""
    _check_query(query)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InputError(f"top_k={top_k!r} must be an int >= 0")
    if top_k == 0:
        return []
    if filter is not None:
        results = doc_store.search(query, top_k=top_k, filter=filter)
    else:  # a store without filters works too
        results = doc_store.search(query, top_k=top_k)
    return [Source(n, r.text, dict(getattr(r, "metadata", None) or {}), float(r.score),
                   getattr(r, "doc_id", None)) for n, r in enumerate(results, start=1)]


def find_tokenizer(model: Any) -> Any:
    """``model.tokenizer``, else the tokenizer saved in ``model.name_or_path``; InputError when there is none."""
    attached = getattr(model, "tokenizer", None)
    if attached is not None and callable(getattr(attached, "encode", None)):
        return attached
    source = getattr(model, "name_or_path", None)
    if isinstance(source, str | Path) and str(source) and Path(source).is_dir():
        from training.tokenizer_loading import has_tokenizer, load_tokenizer

        if has_tokenizer(source):
            return load_tokenizer(source)
    raise InputError(
        f"RAGModel cannot find the tokenizer of this {type(model).__name__}; pass it: "
        "RAGModel(doc_store, model, tokenizer) (load_model_and_tokenizer returns both)"
    )


def model_device(model: Any) -> torch.device:
    """Where the model's input embedding lives (the prompt ids go there)."""
    from minillm.hf.streaming import model_device as device_of

    return device_of(model)


class RAGModel:
    """Answer questions from a document store with a language model.

    ``doc_store`` needs ``search(query, top_k=..., filter=...)`` returning results with ``.text``, ``.score``,
    ``.metadata`` (and ``.doc_id``), as :class:`rag.document_store.SimpleDocumentStore` gives.
    ``context_length`` overrides the model's context size (default: from its config); ``chat`` forces the chat
    template on or off (default: on when the tokenizer has one); ``system_prompt`` replaces the instructions.
    """

    def __init__(self, doc_store: Any, model: Any, tokenizer: Any = None, *,
                 context_length: int | None = None, chat: bool | None = None,
                 system_prompt: str = SYSTEM_PROMPT) -> None:
        if not callable(getattr(doc_store, "search", None)):
            raise InputError(f"doc_store must have a search(query, top_k) method (a SimpleDocumentStore); "
                             f"got {type(doc_store).__name__}")
        if not callable(getattr(model, "generate", None)):
            raise InputError(f"model must have a generate(input_ids, ...) method (a causal LM); got "
                             f"{type(model).__name__}")
        self.doc_store, self.model = doc_store, model
        self.tokenizer = tokenizer if tokenizer is not None else find_tokenizer(model)
        size = context_length if context_length is not None else model_context_length(model)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InputError(f"the context size of this {type(model).__name__} is unknown ({size!r}); pass "
                             "RAGModel(..., context_length=N)")
        self.context_length = size
        has_template = chat_template_of(self.tokenizer) is not None
        if chat and not has_template:
            raise InputError("chat=True but the tokenizer has no chat template; pass chat=None or chat=False")
        self.chat = has_template if chat is None else bool(chat)
        self.system_prompt = system_prompt

    # ----------------------------------------------------------------- retrieval
    def retrieve(self, query: str, top_k: int = 3, filter: Any = None) -> list[Source]:
        """The ``top_k`` best passages for ``query``, numbered from 1 (no generation)."""
        return retrieve_sources(self.doc_store, query, top_k, filter)

    def build_prompt(self, query: str, top_k: int = 3, max_length: int = 256,
                     filter: Any = None) -> tuple[FittedPrompt, list[Source]]:
        """Retrieve and fit: the prompt that leaves ``max_length`` tokens for the answer, and its sources."""
        _check_query(query)
        _check_positive(max_length, "max_length")
        budget = self.context_length - max_length
        if budget < 1:
            raise InputError(f"max_length={max_length} leaves no room for the prompt in the model's context "
                             f"of {self.context_length} tokens; lower max_length")
        found = self.retrieve(query, top_k, filter)
        fitted = fit_prompt(self.tokenizer, query, [(s.text, _title(s.metadata)) for s in found], budget,
                            system=self.system_prompt, chat=self.chat)
        sources = [Source(p.number, p.text, found[p.number - 1].metadata, found[p.number - 1].score,
                          found[p.number - 1].doc_id, p.truncated) for p in fitted.passages]
        return fitted, sources

    # ----------------------------------------------------------------- generation
    def _options(self, max_length: int, temperature: float, top_p: float, sampling_top_k: int | None,
                 repetition_penalty: float) -> dict[str, Any]:
        _check_positive(max_length, "max_length")
        if not isinstance(temperature, int | float) or temperature < 0:
            raise InputError(f"temperature={temperature!r} must be >= 0 (0 means greedy decoding)")
        if not 0 < top_p <= 1:
            raise InputError(f"top_p={top_p!r} must be in (0, 1]")
        sample = temperature > 0
        options: dict[str, Any] = {"max_new_tokens": max_length, "do_sample": sample,
                                   "eos_token_id": self._stops()}
        if sample:  # top_k 0 switches the filter off, for ours and for transformers alike
            options.update(temperature=float(temperature), top_k=sampling_top_k or 0, top_p=top_p)
        if repetition_penalty != 1.0:
            options["repetition_penalty"] = repetition_penalty
        return options

    def _stops(self) -> list[int]:
        """Ids that end the answer: the tokenizer's eos, the model's, the chat format's end-of-turn token."""
        stops: list[int] = []
        values = [self.tokenizer.eos_token_id]
        for source in (getattr(self.model, "config", None), getattr(self.model, "generation_config", None)):
            get = source.get if isinstance(source, dict) else lambda key, s=source: getattr(s, key, None)
            values.append(get("eos_token_id"))
        for value in values:
            stops += list(value) if isinstance(value, list | tuple) else [value]
        if self.chat:
            lookup = getattr(self.tokenizer, "token_to_id", None)
            stops += [lookup(token) for token in _END_OF_TURN] if callable(lookup) else []
        return list(dict.fromkeys(int(i) for i in stops if i is not None))

    def generate(self, query: str, top_k: int = 3, max_length: int = 256, temperature: float = 0.7, *,
                 top_p: float = 0.95, sampling_top_k: int | None = 50, repetition_penalty: float = 1.0,
                 seed: int | None = None, filter: Any = None) -> RAGAnswer:
        """Answer ``query`` from the ``top_k`` best passages in at most ``max_length`` new tokens.

        ``temperature=0`` decodes greedily; ``seed`` makes sampling repeatable (the caller's RNG stays).
        """
        options = self._options(max_length, temperature, top_p, sampling_top_k, repetition_penalty)
        fitted, sources = self.build_prompt(query, top_k, max_length, filter)
        ids = torch.tensor([fitted.ids], dtype=torch.long, device=model_device(self.model))
        with _seeded(seed, ids.device):
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **options)
        new = out[0, ids.shape[1]:].tolist()
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return RAGAnswer(text, sources, fitted.text, len(fitted.ids), fitted.chat)

    def stream(self, query: str, top_k: int = 3, max_length: int = 256, temperature: float = 0.7, *,
               top_p: float = 0.95, sampling_top_k: int | None = 50, repetition_penalty: float = 1.0,
               seed: int | None = None, filter: Any = None) -> RAGStream:
        """Like :meth:`generate`, but the answer comes as text pieces (see :class:`RAGStream`)."""
        options = self._options(max_length, temperature, top_p, sampling_top_k, repetition_penalty)
        fitted, sources = self.build_prompt(query, top_k, max_length, filter)
        result = RAGStream(sources, fitted, iter(()))
        result._pieces = self._pieces(fitted, options, seed, result)
        return result

    def _token_steps(self, fitted: FittedPrompt, options: dict[str, Any], seed: int | None) -> Iterator[int]:
        """New token ids one by one: the model's own stream, transformers' through minillm.hf.streaming, else
        everything ``generate`` returns at once."""
        from minillm.hf.streaming import can_generate, streaming_function

        if callable(getattr(self.model, "stream", None)) or can_generate(self.model):
            steps = streaming_function(self.model)([fitted.ids], seed=seed, **options)
            for step in steps:
                yield int(step[0])
            return
        ids = torch.tensor([fitted.ids], dtype=torch.long, device=model_device(self.model))
        with _seeded(seed, ids.device):
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **options)
        yield from out[0, ids.shape[1]:].tolist()

    def _pieces(self, fitted: FittedPrompt, options: dict[str, Any], seed: int | None,
                result: RAGStream) -> Iterator[str]:
        new: list[int] = []
        shown = ""
        for token in self._token_steps(fitted, options, seed):
            new.append(token)
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()  # as generate() returns it
            if text.endswith("\ufffd"):
                continue  # an incomplete UTF-8 character: wait for its next byte
            if text.startswith(shown) and len(text) > len(shown):
                yield text[len(shown):]
                shown = text
        final = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        if final.startswith(shown) and len(final) > len(shown):
            yield final[len(shown):]
        result.answer = RAGAnswer(final, result.sources, fitted.text, len(fitted.ids), fitted.chat)


def _title(metadata: dict[str, Any]) -> str | None:
    value = metadata.get("title")
    return str(value) if value else None


def _check_query(query: Any) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InputError(f"query must be a non-empty string; got {query!r}")


def _check_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r} must be an int >= 1 (the most new tokens of the answer)")


class _seeded:
    """Seed torch's RNG inside a block, leaving the caller's random state alone (no-op for ``seed=None``)."""

    def __init__(self, seed: int | None, device: torch.device) -> None:
        self.seed = seed
        self.fork = torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [],
                                          enabled=seed is not None)

    def __enter__(self) -> None:
        self.fork.__enter__()
        if self.seed is not None:
            torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        self.fork.__exit__(*exc)
