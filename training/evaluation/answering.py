"""Answer one bank question with any model that speaks the generate protocol, timed.

The prompt is the question (after its context, for PubMedQA, with "Answer yes, no or maybe" for labelled
questions), wrapped in the tokenizer's chat template when ``chat`` is ``on``, or ``auto`` and the tokenizer has
one; otherwise ``Question: ...\\nAnswer:``. Generation is ``model.generate(input_ids, max_new_tokens=...,
do_sample=..., ...)`` only, so our models, transformers models, peft-wrapped and merged ones all answer the same
way; greedy when ``temperature`` is 0. With a ``seed``, torch's RNG is seeded before every question, so a resumed
run samples what an uninterrupted one would. A prompt longer than the model's context less ``max_new_tokens``
keeps its last tokens (the results item says ``prompt_truncated``; the run logs one warning).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch

from minillm.errors import InputError

from .question_bank import Question
from .scoring import answer_label

logger = logging.getLogger(__name__)

CHAT_MODES = ("auto", "on", "off")
LABEL_INSTRUCTION = "Answer yes, no or maybe, then explain briefly."
END_OF_TURN = "<|im_end|>"  # ChatML's end of a turn: a chat reply stops there too
_CONTEXT_FIELDS = ("max_seq_len", "max_position_embeddings", "n_positions", "n_ctx")


@dataclass
class GenerationOptions:
    """How every question is answered: token budget, sampling (``temperature`` 0 = greedy), chat use, seed."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 50
    top_p: float = 0.95
    seed: int | None = 0
    chat: str = "auto"
    system: str | None = None

    def __post_init__(self) -> None:
        checks = [
            ("max_new_tokens", self.max_new_tokens >= 1, "an integer >= 1"),
            ("temperature", self.temperature >= 0, ">= 0 (0 means greedy decoding)"),
            ("top_k", self.top_k >= 0, "an integer >= 0 (0 keeps every token)"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("chat", self.chat in CHAT_MODES, f"one of {', '.join(CHAT_MODES)}"),
        ]
        for name, valid, expected in checks:
            if not valid:
                raise InputError(f"--{name} {getattr(self, name)!r} is invalid; it must be {expected}")


@dataclass
class Answer:
    """A generated response and what it cost."""

    response: str
    seconds: float
    prompt_tokens: int
    new_tokens: int
    truncated: bool = False


def uses_chat(tokenizer: Any, mode: str) -> bool:
    """Whether prompts go through the chat template: ``on``, ``off``, or ``auto`` (when the tokenizer has one)."""
    if mode == "auto":
        return bool(getattr(tokenizer, "chat_template", None))
    return mode == "on"


def question_text(question: Question) -> str:
    """What is asked: the context (if any), the question, and the yes/no/maybe instruction for a labelled one."""
    parts = [f"Context: {question.context.strip()}"] if question.context else []
    asked = f"Question: {question.question.strip()}" if question.context else question.question.strip()
    if answer_label(question.answer) is not None:
        asked += f"\n{LABEL_INSTRUCTION}"
    return "\n\n".join([*parts, asked])


def prompt_ids(tokenizer: Any, question: Question, options: GenerationOptions, chat: bool) -> list[int]:
    """Token ids of the prompt for ``question`` (chat template or the plain ``Question: ... Answer:`` form)."""
    text = question_text(question)
    if chat:
        messages = ([{"role": "system", "content": options.system}] if options.system else []) + [
            {"role": "user", "content": text}]
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return list(tokenizer.encode(rendered, add_special_tokens=False))
    if not text.startswith("Context: "):
        text = f"Question: {text}"
    return list(tokenizer.encode(f"{text}\nAnswer:"))


def context_length(model: Any) -> int | None:
    """The longest sequence the model was built for (``max_seq_len`` or transformers' names), else None."""
    config = getattr(model, "config", None)
    for name in _CONTEXT_FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def is_encoder_decoder(model: Any) -> bool:
    """Whether ``model`` is an encoder-decoder (T5-like): its ``generate`` returns the decoder's tokens only."""
    config = getattr(model, "config", None)
    return bool(getattr(config, "is_encoder_decoder", False)) or getattr(config, "model_type", None) in (
        "encoder_decoder", "t5")


def stop_ids(model: Any, tokenizer: Any, chat: bool) -> tuple[list[int], int]:
    """``(eos ids, pad id)`` for generation: the model's own, the tokenizer's eos and, in chat, the end of turn."""
    from minillm.hf.streaming import generation_defaults

    defaults = generation_defaults(model)
    eos = defaults.get("eos_token_id")
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    extra = [getattr(tokenizer, "eos_token_id", None), tokenizer.token_to_id(END_OF_TURN) if chat else None]
    ids += [i for i in extra if isinstance(i, int) and i not in ids]
    pad = defaults.get("pad_token_id")
    if pad is None:
        pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        pad = ids[0] if ids else 0
    return ids, int(pad)


def answer_question(model: Any, tokenizer: Any, question: Question, options: GenerationOptions,
                    chat: bool) -> Answer:
    """Generate the response to ``question`` and time it (prompt encoding excluded, decoding included)."""
    from minillm.hf.streaming import model_device

    ids = prompt_ids(tokenizer, question, options, chat)
    if not ids:
        raise InputError(f"question {question.id!r} encodes to no tokens; give it some text")
    limit = context_length(model)
    truncated = limit is not None and len(ids) + options.max_new_tokens > limit
    if truncated:
        keep = max(limit - options.max_new_tokens, 1)
        logger.info("question %r: the prompt's %d tokens and %d new ones exceed the model's context of %d; "
                    "keeping the prompt's last %d tokens", question.id, len(ids), options.max_new_tokens,
                    limit, keep)
        ids = ids[-keep:]
    eos, pad = stop_ids(model, tokenizer, chat)
    sample = options.temperature > 0
    kwargs: dict[str, Any] = {"max_new_tokens": options.max_new_tokens, "do_sample": sample, "pad_token_id": pad}
    if eos:
        kwargs["eos_token_id"] = eos
    if sample:
        kwargs.update(temperature=options.temperature, top_k=options.top_k or None, top_p=options.top_p)
    if options.seed is not None:
        torch.manual_seed(options.seed)
    input_ids = torch.tensor([ids], dtype=torch.long, device=model_device(model))
    began = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
    start_of_new = 1 if is_encoder_decoder(model) else input_ids.shape[1]  # after the decoder start, or the prompt
    new = [int(t) for t in output[0, start_of_new:].tolist()]
    while new and new[-1] in eos:  # the token that ended the reply (and any padding after it)
        new.pop()
    response = tokenizer.decode(new, skip_special_tokens=True).strip()
    seconds = time.perf_counter() - began
    return Answer(response=response, seconds=seconds, prompt_tokens=len(ids), new_tokens=len(new),
                  truncated=truncated)
