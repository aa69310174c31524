"""Tokenized examples with labels: loss only where the model should learn to write.

* text: every token is a label;
* chat: rendered with the tokenizer's ``apply_chat_template``; labels only on assistant turns (content and the
  template's end-of-turn text), everything else ``-100``. Assistant spans are found by rendering prefixes:
  the turn starts where ``render(messages[:i], add_generation_prompt=True)`` ends and stops where
  ``render(messages[:i+1])`` ends; each span is tokenized on its own so the labels line up exactly;
* instruction and seq2seq pairs: a user turn and an assistant turn (an Alpaca-style prompt when the tokenizer
  has no chat template).
"""

from __future__ import annotations

from minillm.errors import InputError
from minillm.losses import IGNORE_INDEX

from .formats import as_messages, as_pair, item_text
from .tokens import encode_plain

Example = tuple[list[int], list[int]]


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    full = _render(tokenizer, messages, False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True)
        through = _render(tokenizer, messages[: i + 1], False)
        if not (full.startswith(through) and through.startswith(before)):
            raise InputError(
                f"the chat template does not render message {i} as a prefix of the whole conversation, so the "
                "assistant tokens cannot be located; use a template that renders turns independently"
            )
        spans.append((len(before), len(through)))
    return full, spans


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False
    )
    if not isinstance(text, str):
        raise InputError(
            f"the tokenizer's apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str"
        )
    return text


def chat_example(tokenizer, messages: list[dict]) -> Example:
    """(ids, labels) of a conversation; labels are -100 outside assistant turns."""
    full, spans = assistant_spans(tokenizer, messages)
    ids: list[int] = []
    labels: list[int] = []
    cursor = 0
    for start, end in spans + [(len(full), len(full))]:
        for text, trained in ((full[cursor:start], False), (full[start:end], True)):
            if text:
                piece = encode_plain(tokenizer, text)
                ids += piece
                labels += piece if trained else [IGNORE_INDEX] * len(piece)
        cursor = end
    return ids, labels


def pair_example(tokenizer, prompt: str, answer: str) -> Example:
    """(ids, labels) of an Alpaca-style prompt/answer (for tokenizers without a chat template).

    >>> class Chars:
    ...     def encode(self, text, add_special_tokens=False): return [ord(c) for c in text]
    >>> ids, labels = pair_example(Chars(), "Hi", "Yo")
    >>> "".join(chr(i) for i, l in zip(ids, labels) if l != -100)
    'Yo'
    """
    head = encode_plain(tokenizer, f"### Instruction:\n{prompt}\n\n### Response:\n")
    tail = encode_plain(tokenizer, answer)
    return head + tail, [IGNORE_INDEX] * len(head) + tail


def supervised_example(tokenizer, item: str | dict, kind: str) -> Example:
    """(ids, labels) of any item for causal-LM training."""
    if kind == "text":
        ids = encode_plain(tokenizer, item_text(item))
        return ids, list(ids)
    if hasattr(tokenizer, "apply_chat_template"):
        return chat_example(tokenizer, as_messages(item, kind))
    if kind == "chat":
        raise InputError("chat items need a tokenizer with apply_chat_template")
    return pair_example(tokenizer, *as_pair(item, kind))


def _sep_label(previous_labels: list[int], eos: int) -> int:
    """The separator eos is learned exactly when the document before it is learned up to its end."""
    return eos if previous_labels and previous_labels[-1] != IGNORE_INDEX else IGNORE_INDEX


def pack_examples(examples: list[Example], max_length: int, eos: int) -> tuple[list[dict], int]:
    """Greedy packing of whole examples into rows ``eos A eos B ... eos`` of at most ``max_length`` tokens.

    Each ``eos`` opens a new segment; an example longer than ``max_length - 2`` is truncated. Returns the rows
    (lists ``input_ids``, ``labels``, ``segment_ids``) and how many examples were truncated.

    >>> rows, cut = pack_examples([([5, 6], [5, 6]), ([7], [-100])], 8, 0)
    >>> rows[0]["input_ids"], rows[0]["labels"], rows[0]["segment_ids"], cut
    ([0, 5, 6, 0, 7, 0], [-100, 5, 6, 0, -100, -100], [0, 0, 0, 1, 1, 2], 0)
    """
    rows: list[dict] = []
    row: dict | None = None
    truncated = 0
    limit = max_length - 2
    for ids, labels in examples:
        if len(ids) > limit:
            ids, labels, truncated = ids[:limit], labels[:limit], truncated + 1
        if row is not None and len(row["input_ids"]) + 1 + len(ids) > max_length - 1:
            rows.append(_close(row, eos))
            row = None
        if row is None:
            row = {"input_ids": [eos], "labels": [IGNORE_INDEX], "segment_ids": [0], "_last": []}
        else:
            segment = row["segment_ids"][-1] + 1
            row["input_ids"].append(eos)
            row["labels"].append(_sep_label(row["_last"], eos))
            row["segment_ids"].append(segment)
        row["input_ids"] += ids
        row["labels"] += labels
        row["segment_ids"] += [row["segment_ids"][-1]] * len(ids)
        row["_last"] = labels
    if row is not None:
        rows.append(_close(row, eos))
    return rows, truncated


def _close(row: dict, eos: int) -> dict:
    row["input_ids"].append(eos)
    row["labels"].append(_sep_label(row.pop("_last"), eos))
    row["segment_ids"].append(row["segment_ids"][-1] + 1)
    return row


def single_rows(examples: list[Example], max_length: int, eos: int) -> tuple[list[dict], int]:
    """One row per example, ``A + [eos]``, truncated to ``max_length`` (no packing).

    >>> single_rows([([5, 6, 7], [-100, 6, 7])], 3, 0)
    ([{'input_ids': [5, 6, 0], 'labels': [-100, 6, 0]}], 1)
    """
    rows, truncated = [], 0
    for ids, labels in examples:
        if len(ids) > max_length - 1:
            ids, labels, truncated = ids[: max_length - 1], labels[: max_length - 1], truncated + 1
        rows.append({"input_ids": ids + [eos], "labels": labels + [_sep_label(labels, eos)]})
    return rows, truncated


def seq2seq_example(tokenizer, item: dict, kind: str, max_length: int, eos: int) -> dict:
    """``input_ids`` (source + eos) and ``labels`` (target + eos), each truncated to ``max_length``."""
    source, target = as_pair(item, kind)
    src = encode_plain(tokenizer, source)[: max_length - 1] + [eos]
    tgt = encode_plain(tokenizer, target)[: max_length - 1] + [eos]
    return {"input_ids": src, "labels": tgt}
