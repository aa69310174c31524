"""Question banks: the seed's JSON list of questions, checked item by item, or a labelled PubMedQA slice.

A bank file is a JSON list of objects, each with a string ``question``; ``id`` (default: the 1-based position),
``category``, ``difficulty``, ``answer`` (a short reference answer, or a yes/no/maybe label) and ``keywords`` (a
list of strings) are optional. ``pubmedqa`` or ``pubmedqa:N`` is the shipped PubMedQA dev set (the first N of
its 500 items): the question is the item's title, the abstract (without its conclusion) is the context, and the
answer is the expert label (yes / no / maybe).

    >>> bank = load_bank("pubmedqa:2")
    >>> len(bank.questions), bank.questions[0].answer in ("yes", "no", "maybe"), bool(bank.questions[0].context)
    (2, True, True)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from minillm.errors import InputError

HERE = Path(__file__).resolve().parent
DEFAULT_BANK = HERE.parent / "sample_data" / "autoimmune_questions.json"
PUBMEDQA_FILE = HERE.parent.parent / "rag" / "sample_data" / "pubmedqa_dev.jsonl"
_PUBMEDQA_SPEC = re.compile(r"pubmedqa(?::(\d+))?", re.IGNORECASE)
_OPTIONAL_STRINGS = ("category", "difficulty", "answer", "context")


@dataclass(frozen=True)
class Question:
    """One bank item: what is asked, and what its answer is scored against."""

    id: int | str
    question: str
    category: str | None = None
    difficulty: str | None = None
    answer: str | None = None
    keywords: tuple[str, ...] = ()
    context: str | None = None  # text shown before the question (a PubMedQA abstract)

    @property
    def key(self) -> str:
        """The id as results files match it (``1`` and ``"1"`` are one id)."""
        return str(self.id)


@dataclass(frozen=True)
class QuestionBank:
    """The questions of one bank, in order, and where they came from."""

    source: str
    questions: tuple[Question, ...] = field(default_factory=tuple)

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the ids and questions: equal for two runs of the same bank."""
        text = json.dumps([[q.key, q.question] for q in self.questions], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_bank(spec: str | os.PathLike | None = None) -> QuestionBank:
    """The bank ``spec`` names: a JSON file path, ``pubmedqa[:N]``, or None for the shipped autoimmune bank.

    Bad input raises one-line errors: FileNotFoundError for a missing file, InputError for a file that is not
    a list of objects with a string ``question`` (naming the index of the first bad item), repeated ids or
    malformed optional fields.
    """
    if spec is None:
        spec = DEFAULT_BANK
    match = _PUBMEDQA_SPEC.fullmatch(str(spec))
    if match and not Path(spec).exists():
        return pubmedqa_bank(int(match.group(1)) if match.group(1) else None)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"question bank {str(path)!r} does not exist; pass a JSON list of "
                                "{\"question\": ...} objects or pubmedqa[:N]")
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"question bank {str(path)!r} is not valid JSON ({_reason(exc)}); it must be a JSON "
                         "list of {\"question\": ...} objects") from None
    return QuestionBank(str(path), parse_bank(value, str(path)))


def parse_bank(value: object, where: str = "the question bank") -> tuple[Question, ...]:
    """Questions of a decoded bank; InputError naming the first bad item's index and what is wrong with it."""
    if not isinstance(value, list):
        raise InputError(f"question bank {where!r} holds a JSON {type(value).__name__}; it must be a list of "
                         "objects with a string 'question'")
    if not value:
        raise InputError(f"question bank {where!r} is an empty list; give at least one {{\"question\": ...}}")
    questions = [_question(item, index, where) for index, item in enumerate(value)]
    seen: dict[str, int] = {}
    for index, question in enumerate(questions):
        if question.key in seen:
            raise InputError(f"question bank {where!r}: item {index} repeats id {question.id!r} of item "
                             f"{seen[question.key]}; give every question its own id")
        seen[question.key] = index
    return tuple(questions)


def _question(item: object, index: int, where: str) -> Question:
    prefix = f"question bank {where!r}: item {index}"
    if not isinstance(item, dict):
        raise InputError(f"{prefix} is a JSON {type(item).__name__}, not an object with a string 'question'")
    text = item.get("question")
    if not isinstance(text, str) or not text.strip():
        got = "no 'question'" if "question" not in item else f"question={text!r}"
        raise InputError(f"{prefix} has {got}; every item needs a non-empty string 'question'")
    for name in _OPTIONAL_STRINGS:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise InputError(f"{prefix}: {name!r} must be a string, got {type(item[name]).__name__}")
    keywords = item.get("keywords") or []
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise InputError(f"{prefix}: 'keywords' must be a list of non-empty strings, got {keywords!r}")
    identifier = item.get("id", index + 1)
    if isinstance(identifier, bool) or not isinstance(identifier, (int, str)):
        raise InputError(f"{prefix}: 'id' must be an integer or a string, got {identifier!r}")
    return Question(id=identifier, question=text, category=item.get("category"), difficulty=item.get("difficulty"),
                    answer=item.get("answer"), keywords=tuple(keywords), context=item.get("context"))


def pubmedqa_bank(limit: int | None = None, path: str | os.PathLike = PUBMEDQA_FILE) -> QuestionBank:
    """The first ``limit`` (default all 500) PubMedQA dev items as a labelled yes/no/maybe bank."""
    if limit is not None and limit < 1:
        raise InputError(f"pubmedqa:{limit} asks for no questions; use pubmedqa:N with N >= 1 (at most 500)")
    questions = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(questions) >= limit:
                break
            if line.strip():
                record = json.loads(line)
                questions.append(Question(id=record["pmid"], question=record["title"], category="pubmedqa",
                                          answer=record["final_decision"], context=record["text"]))
    name = "pubmedqa" if limit is None else f"pubmedqa:{limit}"
    return QuestionBank(name, tuple(questions))


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "not UTF-8 text"
