"""Page geometry for the PDF reader: text blocks in reading order (two-column pages read column by column) and
headings told apart from body text by their font size or weight.

Pure functions on :class:`TextBlock` (no PyMuPDF import), so the rules are tested on crafted blocks.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

HEADING_RATIO = 1.15  # a line this much larger than the body text is a heading
MAX_HEADING_CHARS = 200
COLUMN_SHARE = 0.15  # each column holds at least this share of a page's characters on a two-column page
_SECTION_NUMBER = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|[A-Z]\.)\s+\S")


@dataclass
class Line:
    """One line of text: its characters, font size (that of most of its characters), whether every span is
    bold, and whether it runs left to right (rotated text, e.g. an arXiv stamp in the margin, is no heading)."""

    text: str
    size: float
    bold: bool = False
    upright: bool = True


@dataclass
class TextBlock:
    """A block of lines and its bounding box (PDF points, y grows downwards)."""

    x0: float
    y0: float
    x1: float
    y1: float
    lines: list[Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def chars(self) -> int:
        return sum(len(line.text.strip()) for line in self.lines)


def _side(block: TextBlock, middle: float) -> str:
    if block.x1 <= middle + 2:
        return "left"
    if block.x0 >= middle - 2:
        return "right"
    return "spanning"


def reading_order(blocks: list[TextBlock], page_width: float) -> list[TextBlock]:
    """``blocks`` in reading order: top to bottom, and on a two-column page the left column before the right
    between blocks that span both (titles, wide figures, footers).

    A page is two-column when blocks lying wholly left and wholly right of the text area's middle each hold at
    least ``COLUMN_SHARE`` of its characters; other pages are read top to bottom, left to right.
    """
    if not blocks:
        return []
    left_edge = min(b.x0 for b in blocks)
    right_edge = max(b.x1 for b in blocks)
    middle = (left_edge + right_edge) / 2 if right_edge - left_edge > page_width / 3 else page_width / 2
    sides = {id(b): _side(b, middle) for b in blocks}
    total = sum(b.chars for b in blocks) or 1
    share = {s: sum(b.chars for b in blocks if sides[id(b)] == s) / total for s in ("left", "right")}
    if min(share.values()) < COLUMN_SHARE:
        return sorted(blocks, key=lambda b: (round(b.y0), b.x0))
    spanning = sorted((b for b in blocks if sides[id(b)] == "spanning"), key=lambda b: b.y0)
    ordered: list[TextBlock] = []
    for band in range(len(spanning) + 1):
        for side in ("left", "right"):
            column = [b for b in blocks if sides[id(b)] == side and _band(b, spanning) == band]
            ordered.extend(sorted(column, key=lambda b: b.y0))
        if band < len(spanning):
            ordered.append(spanning[band])
    return ordered


def _band(block: TextBlock, spanning: list[TextBlock]) -> int:
    """How many spanning blocks start above the middle of ``block``."""
    centre = (block.y0 + block.y1) / 2
    return sum(1 for s in spanning if s.y0 < centre)


def body_size(blocks: list[TextBlock]) -> float:
    """The font size that most characters use (to the nearest half point); 0 without text."""
    sizes: Counter[float] = Counter()
    for block in blocks:
        for line in block.lines:
            sizes[round(line.size * 2) / 2] += len(line.text.strip())
    return sizes.most_common(1)[0][0] if sizes else 0.0


def heading_levels(blocks: list[TextBlock], body: float) -> dict[float, int]:
    """Markdown levels (1-3) for the sizes of large-font lines: the largest size is ``#``, the next ``##``."""
    sizes = sorted({round(line.size * 2) / 2 for b in blocks for line in b.lines
                    if _is_large(line, body) and _reads_like_heading(line.text)}, reverse=True)
    return {size: min(level, 3) for level, size in enumerate(sizes, start=1)}


def _is_large(line: Line, body: float) -> bool:
    return body > 0 and line.upright and line.size >= body * HEADING_RATIO


def _reads_like_heading(text: str) -> bool:
    text = text.strip()
    letters = sum(c.isalpha() for c in text)
    return 0 < len(text) <= MAX_HEADING_CHARS and letters >= 3 and letters >= 0.5 * len(text.replace(" ", ""))


def split_heading(block: TextBlock, body: float, levels: dict[float, int]) -> tuple[str | None, int, list[Line]]:
    """``(heading text or None, its level, the remaining lines)`` of a block.

    A heading is the block's leading lines in a large font (level by size), or its leading all-bold lines when
    they start with a section number (``2.1 Assumptions``; level: one below the large sizes).
    """
    lines = block.lines
    large = 0
    while large < len(lines) and _is_large(lines[large], body) and lines[large].text.strip():
        large += 1
    if large and large <= 3:
        text = " ".join(line.text.strip() for line in lines[:large])
        if _reads_like_heading(text):
            size = round(max(line.size for line in lines[:large]) * 2) / 2
            return text, levels.get(size, min(len(levels) + 1, 3)), lines[large:]
    bold = 0
    while bold < len(lines) and lines[bold].bold and lines[bold].upright and lines[bold].text.strip():
        bold += 1
    if 0 < bold <= 2:
        text = " ".join(line.text.strip() for line in lines[:bold])
        if _SECTION_NUMBER.match(text) and _reads_like_heading(text) and len(text) <= 80:
            return text, min(len(levels) + 1, 4), lines[bold:]
    return None, 0, lines
