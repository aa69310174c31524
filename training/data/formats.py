"""Training item formats: what an item is, JSONL and JSON-list reading, and the message/pair views the objectives need.

An item is a plain string or a dict of one of these shapes:

============  ==============================================  ======================================
kind          dict keys                                       used by
============  ==============================================  ======================================
text          ``{"text": str}`` (or a bare ``str``)            clm (all tokens), mlm
instruction   ``{"input", "output"}`` or Alpaca                clm (loss on the output), seq2seq
              ``{"instruction", "input"?, "output"}``
chat          ``{"messages": [{"role", "content"}, ...]}``     clm (loss on assistant turns)
seq2seq       ``{"source", "target"}``                         seq2seq, clm (as an instruction)
============  ==============================================  ======================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from minillm.errors import InputError

from .text import decode_bytes

Item = str | dict
KINDS = ("text", "instruction", "chat", "seq2seq")


def item_kind(item: object, where: str = "item") -> str:
    """The kind of a training item; ValueError naming the keys seen when it has no known shape.

    >>> item_kind("hello"), item_kind({"text": "hi"}), item_kind({"source": "a", "target": "b"})
    ('text', 'text', 'seq2seq')
    >>> item_kind({"instruction": "Add", "input": "1 2", "output": "3"}), item_kind({"messages": []})
    ('instruction', 'chat')
    """
    if isinstance(item, str):
        return "text"
    if isinstance(item, dict):
        keys = set(item)
        if "messages" in keys:
            _check_messages(item["messages"], where)
            return "chat"
        if "text" in keys:
            _check_str(item, "text", where)
            return "text"
        if {"source", "target"} <= keys:
            _check_str(item, ("source", "target"), where)
            return "seq2seq"
        if "output" in keys and keys & {"input", "instruction"}:
            _check_str(item, [k for k in ("instruction", "input", "output") if k in keys], where)
            return "instruction"
        shown = sorted(keys)
    else:
        shown = type(item).__name__
    raise InputError(
        f"{where} has no known shape (got {shown}); expected a string, {{'text'}}, {{'input','output'}}, "
        "{'instruction','input','output'}, {'messages'} or {'source','target'}"
    )


def _check_str(item: dict, keys: str | tuple | list, where: str) -> None:
    for key in [keys] if isinstance(keys, str) else keys:
        if not isinstance(item[key], str):
            raise InputError(f"{where}: field {key!r} must be a string, got {type(item[key]).__name__}")


def _check_messages(messages: object, where: str) -> None:
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in messages
    ):
        raise InputError(f"{where}: 'messages' must be a list of {{'role': str, 'content': str}} dicts")


def item_text(item: Item) -> str:
    """The text of a text item (``str`` or ``{"text"}``)."""
    return item if isinstance(item, str) else item["text"]


def instruction_prompt(item: dict) -> str:
    """The user turn of an instruction item: instruction, a blank line, then the input (either may be absent).

    >>> instruction_prompt({"instruction": "Add.", "input": "1 2", "output": "3"})
    'Add.\\n\\n1 2'
    """
    parts = [item.get("instruction", ""), item.get("input", "")]
    return "\n\n".join(part for part in parts if part)


def as_messages(item: dict, kind: str) -> list[dict]:
    """Chat messages for a chat, instruction or seq2seq item (the answer is the assistant's turn)."""
    if kind == "chat":
        return item["messages"]
    prompt, answer = as_pair(item, kind)
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def as_pair(item: dict, kind: str) -> tuple[str, str]:
    """(source, target) of a seq2seq or instruction item."""
    if kind == "seq2seq":
        return item["source"], item["target"]
    if kind == "instruction":
        return instruction_prompt(item), item["output"]
    raise InputError(
        f"a {kind} item has no (source, target) pair; seq2seq needs {{'source','target'}} or "
        "{'input','output'} items"
    )


def read_jsonl(path: str | os.PathLike, encoding_errors: str = "strict") -> list[Item]:
    """Items of a JSONL file: ``{"text"}`` lines become strings, other known shapes stay dicts.

    Blank lines are skipped; a line that is not a JSON object of a known shape raises ValueError with its
    line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    text = decode_bytes(path.read_bytes(), encoding_errors, source=f"file {str(path)!r}").removeprefix(
        "\ufeff"
    )
    items: list[Item] = []
    # JSON Lines end at "\n" only: str.splitlines() would also break inside strings holding U+2028/U+2029 or \x1c
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"line {number} of {str(path)!r}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where} is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise InputError(f"{where} is a JSON {type(value).__name__}, expected an object")
        kind = item_kind(value, where)
        items.append(value["text"] if kind == "text" else value)
    if not items:
        raise InputError(f"data file {str(path)!r} is empty (no JSON lines)")
    return items


def read_json_list(path: str | os.PathLike, encoding_errors: str = "strict") -> list[Item]:
    """Items of a ``.json`` file holding one JSON list (the seed's ``[{"input": ..., "output": ...}, ...]``).

    Each element is checked like a JSONL line; ``{"text"}`` elements become strings. A file that is not a
    list, or an empty list, raises InputError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    text = decode_bytes(path.read_bytes(), encoding_errors, source=f"file {str(path)!r}").removeprefix("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                         "a .json data file holds one list of items (use .jsonl for one item per line)") from None
    if not isinstance(value, list):
        raise InputError(f"{str(path)!r} holds a JSON {type(value).__name__}; a .json data file holds a list of "
                         'items such as [{"input": ..., "output": ...}]')
    if not value:
        raise InputError(f"data file {str(path)!r} is an empty list")
    items: list[Item] = []
    for number, element in enumerate(value):
        kind = item_kind(element, f"item {number} of {str(path)!r}")
        items.append(element["text"] if kind == "text" and isinstance(element, dict) else element)
    return items
