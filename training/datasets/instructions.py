"""Instruction pairs ``{"input", "output"}`` from documents, the seed's ``data/processed/train.json`` form.

Per document: the title asks for a summary and the abstract answers it (``abstract``); every section with
enough text becomes a question on its heading answered by its content (``section-N``). Sections that are not
content (references, acknowledgements ...) and the abstract itself (already the summary) are left out.
"""

from __future__ import annotations

from .documents import ABSTRACT_HEADINGS, Document

MIN_ANSWER_CHARS = 40
SKIP_HEADINGS = ("references", "bibliography", "acknowledgements", "acknowledgments", "acknowledgement",
                 "funding", "conflict of interest", "conflicts of interest", "author contributions",
                 "competing interests", "table of contents", "contents", "keywords", "key words")


def summary_prompt(title: str) -> str:
    """The instruction asking for a paper's summary."""
    return f'Summarize the paper "{title}".'


def section_prompt(title: str, heading: str) -> str:
    """The question asking for one section's content."""
    return f'In the paper "{title}", what does the section "{heading}" say?'


def instruction_items(document: Document, max_answer_chars: int | None = None) -> list[tuple[str, dict[str, str]]]:
    """``(item, {"input", "output"})`` for one document, in order; ``item`` is stable between runs.

    >>> from training.datasets.documents import document_from_text
    >>> doc = document_from_text("a.md", "# Deep nets\\n\\n## Abstract\\nWe study deep nets in depth here.\\n\\n"
    ...                          "## Methods\\nWe trained forty networks on two datasets for a week.\\n")
    >>> [(item, pair["input"]) for item, pair in instruction_items(doc)]
    [('abstract', 'Summarize the paper "Deep nets".'), ('section-2', 'In the paper "Deep nets", what does the section "Methods" say?')]
    """
    items: list[tuple[str, dict[str, str]]] = []

    def cut(text: str) -> str:
        return text if max_answer_chars is None else text[:max_answer_chars].rstrip()

    if document.abstract.strip():
        items.append(("abstract", {"input": summary_prompt(document.title), "output": cut(document.abstract)}))
    for number, section in enumerate(document.sections, start=1):
        heading = section.heading.strip().rstrip(":")
        name = heading.lower().lstrip("0123456789. ")
        if name in ABSTRACT_HEADINGS or name in SKIP_HEADINGS or len(section.content.strip()) < MIN_ANSWER_CHARS:
            continue
        items.append((f"section-{number}", {"input": section_prompt(document.title, heading),
                                            "output": cut(section.content.strip())}))
    return items
