"""Scores of one response against its question, and their means over a run.

- ``accuracy`` (questions whose answer is a yes / no / maybe label, e.g. PubMedQA): 1.0 when the response's
  label equals it, else 0.0. The response's label is the **first** of the words yes, no, maybe in it (any case,
  whole words: "Nobody" is not "no"); a response with none of them is wrong.
- ``rouge_l`` (questions with a reference answer that is not a label): ROUGE-L F-measure of the response against
  the answer, with Porter stemming (the ``rouge-score`` package).
- ``keyword_coverage`` (questions with keywords): the share of keywords found in the response, case-insensitive,
  each as a whole word or phrase (not inside a longer word: "joint" is not found in "joints").

    >>> parse_label("Maybe; no trial settles it."), parse_label("Nobody knows")
    ('maybe', None)
    >>> keyword_coverage("IL-6 and TNF in the joints", ["tnf", "il-6", "joint"])
    0.6666666666666666
"""

from __future__ import annotations

import functools
import re
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from .question_bank import Question

LABELS = ("yes", "no", "maybe")
SCORE_NAMES = ("accuracy", "rouge_l", "keyword_coverage")
_LABEL_WORD = re.compile(r"(?<!\w)(yes|no|maybe)(?!\w)", re.IGNORECASE)


def answer_label(answer: str | None) -> str | None:
    """``answer`` as a yes / no / maybe label when it is one (any case, trailing punctuation ignored), else None."""
    if answer is None:
        return None
    text = answer.strip().strip(".!").strip().lower()
    return text if text in LABELS else None


def parse_label(response: str) -> str | None:
    """The first of yes / no / maybe in ``response`` (whole words, any case), lower-case; None when absent."""
    match = _LABEL_WORD.search(response)
    return match.group(1).lower() if match else None


@functools.cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(response: str, reference: str) -> float:
    """ROUGE-L F-measure (stemmed) of ``response`` against ``reference``, in [0, 1]."""
    return float(_rouge_scorer().score(reference, response)["rougeL"].fmeasure)


def keyword_coverage(response: str, keywords: Sequence[str]) -> float:
    """Share of ``keywords`` found in ``response`` as whole words or phrases, ignoring case."""
    if not keywords:
        raise ValueError("keyword_coverage needs at least one keyword")
    found = sum(1 for keyword in keywords if _keyword_pattern(keyword).search(response))
    return found / len(keywords)


@functools.lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(keyword.strip()) + r"(?!\w)", re.IGNORECASE)


def score_response(question: Question, response: str) -> dict[str, float]:
    """The scores that apply to ``question`` (see the module docstring) for ``response``."""
    scores: dict[str, float] = {}
    label = answer_label(question.answer)
    if label is not None:
        scores["accuracy"] = float(parse_label(response) == label)
    elif question.answer and question.answer.strip():
        scores["rouge_l"] = rouge_l(response, question.answer)
    if question.keywords:
        scores["keyword_coverage"] = keyword_coverage(response, question.keywords)
    return scores


def aggregate(items: Iterable[dict[str, Any]]) -> dict[str, float | int | None]:
    """Means over results items: every score (over the items that have it; None when none has), ``n``,
    ``mean_seconds`` and ``total_seconds``."""
    items = list(items)
    summary: dict[str, float | int | None] = {"n": len(items)}
    for name in SCORE_NAMES:
        values = [float(item["scores"][name]) for item in items if name in (item.get("scores") or {})]
        summary[name] = statistics.fmean(values) if values else None
    seconds = [float(item["time_seconds"]) for item in items]
    summary["mean_seconds"] = statistics.fmean(seconds) if seconds else None
    summary["total_seconds"] = sum(seconds)
    return summary
