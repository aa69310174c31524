"""Chat records ``{"messages": [system, user, assistant]}`` from the instruction pairs of each document."""

from __future__ import annotations

from .documents import Document
from .instructions import instruction_items

SYSTEM_PROMPT = ("You are a careful research assistant. Answer questions about scientific papers accurately and "
                 "concisely, using only what the paper says.")


def messages_for(system: str, user: str, assistant: str) -> list[dict[str, str]]:
    """The three-turn conversation of one record."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user},
            {"role": "assistant", "content": assistant}]


def chat_items(document: Document, max_answer_chars: int | None = None,
               system_prompt: str = SYSTEM_PROMPT) -> list[tuple[str, dict]]:
    """``(item, {"messages": [...]})`` for one document: its instruction pairs as conversations."""
    return [(item, {"messages": messages_for(system_prompt, pair["input"], pair["output"])})
            for item, pair in instruction_items(document, max_answer_chars)]
