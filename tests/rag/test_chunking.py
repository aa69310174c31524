"""DocumentProcessor.chunks: offsets, overlap for every method, token windows, abbreviations and headings.

Property tests (hypothesis) check for every method that chunks cover the text in order, none exceeds
max_length (characters, or tokens for method="tokens") and the overlap rule of ``rag.sizing.add_overlap`` holds.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minillm.errors import InputError
from rag.chunking import METHODS, Chunk
from rag.sentences import is_heading, is_word_start, section_spans, sentence_spans
from rag.sizing import latest_word_start
from rag.splitters import DocumentProcessor
from tokenizers_bpe import BPETokenizer

CHUNKS = DocumentProcessor.chunks
SPLIT = DocumentProcessor.split_text
CHARACTER_METHODS = ("paragraph", "sentence", "chunk", "semantic", "regex")
PATTERN = r"\n#+ "
PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, database=None)
TEXTS = st.text(alphabet=st.sampled_from(list("ab cD.?!\n\t,é#3")), max_size=400)


class CharTokens:
    """One token per character (a transformers-like encode signature)."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    corpus = ["The patients were treated with aspirin and the trial measured the effect of the dose.",
              "Cells divide; genes express proteins. Blood pressure rose in the heart study."] * 20
    tokenizer = BPETokenizer(vocab_size=400, show_progress=False)
    tokenizer.train(corpus)
    return tokenizer


def separators(text: str, method: str) -> set[int]:
    """Character positions a method drops (regex separators)."""
    if method != "regex":
        return set()
    return {i for m in re.finditer(PATTERN, text) for i in range(*m.span())}


def check_invariants(text: str, chunks: list[Chunk], method: str, max_length: int, tokens=None) -> None:
    """Offsets match, chunks are stripped and in order, they cover every non-space character, sizes hold."""
    for chunk in chunks:
        assert text[chunk.start:chunk.end] == chunk.text == chunk.text.strip() != ""
        if tokens is None:
            assert len(chunk.text) <= max_length
        else:
            assert chunk.token_count == len(tokens.encode(chunk.text, add_special_tokens=False)) <= max_length
    for left, right in itertools.pairwise(chunks):
        assert left.start < right.start and left.end < right.end
    covered = {i for c in chunks for i in range(c.start, c.end)}
    dropped = separators(text, method)
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace() and i not in dropped)


def check_overlap(text: str, chunks: list[Chunk], overlap: int, max_length: int) -> None:
    """Neighbours share >= overlap characters from a word start whenever such a start exists and fits."""
    for left, right in itertools.pairwise(chunks):
        if overlap == 0:
            assert right.start >= left.end
            continue
        w = latest_word_start(text, left.start + 1, left.end - overlap)
        if w is not None and right.end - w <= max_length:
            assert right.start <= w, (left, right)
        assert is_word_start(text, right.start) or right.start >= left.end


@PROPERTY
@given(text=TEXTS, method=st.sampled_from(CHARACTER_METHODS), min_length=st.integers(0, 30),
       extra=st.integers(1, 80), overlap_share=st.floats(0, 0.9))
def test_property_character_methods_cover_in_order_fit_and_overlap(text, method, min_length, extra, overlap_share):
    max_length = min_length + extra
    overlap = int(overlap_share * max_length) if overlap_share > 0.3 else 0
    chunks = CHUNKS(text, method=method, min_length=min_length, max_length=max_length, overlap=overlap,
                    pattern=PATTERN)
    if len(text.strip()) < min_length:
        assert chunks == []
        return
    check_invariants(text, chunks, method, max_length)
    check_overlap(text, chunks, overlap, max_length)
    assert SPLIT(text, method=method, min_length=min_length, max_length=max_length, overlap=overlap,
                 pattern=PATTERN) == [c.text for c in chunks]


@PROPERTY
@given(text=TEXTS, max_length=st.integers(1, 60), overlap_share=st.floats(0, 0.9), min_length=st.integers(0, 5))
def test_property_token_windows_cover_in_order_and_fit(text, max_length, overlap_share, min_length):
    overlap = int(overlap_share * max_length)
    tokens = CharTokens()
    min_length = min(min_length, max_length)
    chunks = CHUNKS(text, method="tokens", tokenizer=tokens, max_length=max_length, min_length=min_length,
                    overlap=overlap)
    if len(text.strip()) < min_length:
        assert chunks == []
        return
    check_invariants(text, chunks, "tokens", max_length, tokens)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(words=st.lists(st.sampled_from(["the", "patients", "dose.", "Effect", "of", "aspirin,", "heart", "xyzzyq"]),
                      min_size=1, max_size=120), max_length=st.integers(4, 40), overlap=st.integers(0, 3))
def test_property_token_windows_with_a_real_bpe(bpe, words, max_length, overlap):
    text = " ".join(words)
    chunks = CHUNKS(text, method="tokens", tokenizer=bpe, max_length=max_length, min_length=0, overlap=overlap)
    check_invariants(text, chunks, "tokens", max_length, bpe)
    if overlap:
        assert all(right.start < left.end for left, right in itertools.pairwise(chunks) if left.text.count(" ") > 4)


def test_chunks_carry_offsets_and_split_text_is_their_text():
    text = "  First paragraph here.\n\nSecond one, a bit longer.\n\n\nThird.  "
    chunks = CHUNKS(text, method="paragraph", min_length=0)
    assert [(c.start, c.end) for c in chunks] == [(2, 23), (25, 50), (53, 59)]
    assert [c.text for c in chunks] == SPLIT(text, method="paragraph", min_length=0)
    assert chunks[0].token_count is None and len(chunks[0]) == 21


@pytest.mark.parametrize("method", ["paragraph", "sentence", "semantic", "chunk"])
def test_overlap_repeats_the_end_of_the_previous_chunk(method):
    text = " ".join(f"Sentence {i} talks about topic {i % 3}." for i in range(30))
    plain = CHUNKS(text, method=method, min_length=0, max_length=120)
    chunks = CHUNKS(text, method=method, min_length=0, max_length=120, overlap=12)
    assert all(len(c) <= 120 for c in chunks) and len(chunks) >= len(plain)
    for left, right in itertools.pairwise(chunks):
        shared = left.end - right.start
        assert shared >= 12 and text[right.start:left.end] == left.text[-shared:]


class LetterTokens:
    """One token per non-space character."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text if not c.isspace()]


def test_token_overlap_counts_tokens():
    text = " ".join(f"w{i}" for i in range(40))  # every word is 2 or 3 tokens
    chunks = CHUNKS(text, method="tokens", tokenizer=LetterTokens(), max_length=20, min_length=0, overlap=6)
    for left, right in itertools.pairwise(chunks):
        shared = text[right.start:left.end]
        assert 6 <= len(shared.replace(" ", "")) < 9 and left.text.endswith(shared)
    assert all(c.token_count >= 18 for c in chunks[:-1])
    assert chunks[-1].text.endswith("w39")


def test_tokens_fit_our_bpe_and_an_hf_tokenizer_window(bpe, minilm_path):
    from minillm.hf.tokenizer import HFTokenizer

    text = "The patients were treated with aspirin. " * 30 + "Cells divide; genes express proteins. " * 30
    for tokenizer in (bpe, HFTokenizer.load(minilm_path)):
        chunks = CHUNKS(text, method="tokens", tokenizer=tokenizer, max_length=32, min_length=8, overlap=4)
        counts = [len(tokenizer.encode(c.text, add_special_tokens=False)) for c in chunks]
        assert max(counts) <= 32 and min(counts[:-1]) >= 16 and [c.token_count for c in chunks] == counts
        assert all(c.text.endswith(".") for c in chunks[:-1])  # windows end at sentence ends when they can


def test_tokens_cut_a_word_longer_than_the_window():
    chunks = CHUNKS("a" * 25 + " end", method="tokens", tokenizer=CharTokens(), max_length=10, min_length=0)
    assert [c.text for c in chunks] == ["a" * 10, "a" * 10, "aaaaa end"]


def test_tokens_min_length_drops_a_short_text_and_merges_a_short_tail():
    tokens = CharTokens()
    assert CHUNKS("tiny", method="tokens", tokenizer=tokens, min_length=10, max_length=20) == []
    assert CHUNKS("   ", method="tokens", tokenizer=tokens, min_length=0, max_length=20) == []
    chunks = CHUNKS("abcdefgh ijklmnop qr", method="tokens", tokenizer=tokens, min_length=3, max_length=20)
    assert [c.text for c in chunks] == ["abcdefgh ijklmnop qr"]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "tokens"}, "method='tokens' needs tokenizer=.*got NoneType"),
    ({"method": "tokens", "tokenizer": "gpt2"}, "got str"),
    ({"method": "sentence", "overlap": 100, "max_length": 100}, "overlap=100 must be smaller than max_length=100"),
    ({"method": "paragraph", "overlap": -1}, "overlap=-1 must be an int >= 0"),
    ({"method": "tokens", "tokenizer": CharTokens(), "max_length": 1, "min_length": 0}, "cannot hold even one"),
])
def test_bad_token_and_overlap_arguments_are_one_line_errors(kwargs, message):
    class Wide(CharTokens):
        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return [0, 0] * len(text)

    if kwargs.get("max_length") == 1:
        kwargs["tokenizer"] = Wide()
    with pytest.raises(InputError, match=message):
        CHUNKS("Some text here.", **kwargs)
    assert "tokens" in METHODS


@pytest.mark.parametrize("text, sentences", [
    ("Results held, e.g. in mice. Next one.", ["Results held, e.g. in mice.", "Next one."]),
    ("Smith et al. reported it. Jones et al. The second.",
     ["Smith et al. reported it.", "Jones et al.", "The second."]),
    ("Lee et al. (2019) agree. Done.", ["Lee et al. (2019) agree.", "Done."]),
    ("As shown in Fig. 2, it rises. See Figs. 3 and 4. Fig. 5. The end.",
     ["As shown in Fig. 2, it rises.", "See Figs. 3 and 4.", "Fig. 5.", "The end."]),
    ("The mean was 3.14 mm. It rose to 2.5. Then 0.05. P fell.",
     ["The mean was 3.14 mm.", "It rose to 2.5.", "Then 0.05.", "P fell."]),
    ("J. R. R. Tolkien wrote it. A. Smith agreed. Vitamin D. The end.",
     ["J. R. R. Tolkien wrote it.", "A. Smith agreed.", "Vitamin D.", "The end."]),
    ("Was it? No. It was not. See No. 5 first.", ["Was it?", "No.", "It was not.", "See No. 5 first."]),
    ("Dr. Who met Mr. Smith, i.e. Prof. Jones. They spoke vs. Eq. (3) here.",
     ["Dr. Who met Mr. Smith, i.e. Prof. Jones.", "They spoke vs. Eq. (3) here."]),
    ("He moved to the U.S. The team won. The U.S. Army came.",
     ["He moved to the U.S.", "The team won.", "The U.S. Army came."]),
    ("2.1. Methods\nWe dosed mice. IV. Results\nThey lived.", ["2.1. Methods\nWe dosed mice.", "IV.", "Results\nThey lived."]),
])
def test_sentences_survive_abbreviations_citations_figures_decimals_and_initials(text, sentences):
    assert [text[a:b] for a, b in sentence_spans(text)] == sentences


@pytest.mark.parametrize("line", ["# Title", "### 2.3 Setup", "1 Introduction", "2.1 Related work", "3. Methods",
                                  "IV. Discussion", "Abstract", "References", "Materials and Methods",
                                  "Conclusions:", "ACKNOWLEDGMENTS", "RELATED WORK"])
def test_heading_lines_are_recognised(line):
    assert is_heading(line)


@pytest.mark.parametrize("line", ["1. We enrolled 50 patients.", "2 of the mice died", "3 0.51 0.72 0.33",
                                  "The results were clear", "DNA", "#hashtag", "", "Table 2 shows the doses."])
def test_ordinary_lines_are_not_headings(line):
    assert not is_heading(line)


PAPER = """Probabilistic Counting for Data Bases
Abstract
We present an algorithm that counts distinct elements in a single pass. It uses little memory.
1 Introduction
Counting distinct values is a classic problem in databases. Hashing helps with it.
2.1 Related work
Earlier estimators sorted the data first. Sorting costs time.

## Experiments

Our runs on real files confirm the analysis. The error matched the bound.
REFERENCES
[1] A. Author. A paper. 1980.
"""


def test_semantic_cuts_extracted_papers_at_markdown_and_numbered_headings():
    chunks = SPLIT(PAPER, method="semantic", min_length=0, max_length=1000, threshold=0.0)  # no topic cuts
    starts = [c.split("\n", 1)[0] for c in chunks]
    assert starts == ["Probabilistic Counting for Data Bases", "Abstract", "1 Introduction", "2.1 Related work",
                      "## Experiments", "REFERENCES"]
    assert chunks[4].startswith("## Experiments\n\nOur runs") and chunks[1].endswith("little memory.")
    assert [PAPER[a:b] for a, b in section_spans(PAPER)][1:] == chunks[1:]


def test_semantic_with_overlap_and_a_small_window_stays_in_bounds():
    chunks = CHUNKS(PAPER, method="semantic", min_length=20, max_length=90, overlap=15)
    check_invariants(PAPER, chunks, "semantic", 90)
    check_overlap(PAPER, chunks, 15, 90)
