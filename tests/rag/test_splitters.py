"""DocumentProcessor: every method, the size rules shared by all methods, and bad arguments."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag import DocumentProcessor
from rag.splitters import METHODS

SPLIT = DocumentProcessor().split_text
NON_OVERLAPPING = ("paragraph", "sentence", "semantic", "regex", "chunk")
OPTIONS = {"regex": {"pattern": r"\n#+ "}}


def words(pieces: list[str]) -> list[str]:
    return " ".join(pieces).split()


def test_paragraph_split_keeps_paragraph_text():
    text = "Alpha one two.\nStill alpha.\n\n\n  Beta three four.  \n\nGamma five six."
    assert SPLIT(text, method="paragraph", min_length=0) == [
        "Alpha one two.\nStill alpha.",
        "Beta three four.",
        "Gamma five six.",
    ]


def test_sentence_split_respects_abbreviations_decimals_and_initials():
    text = (
        "Dr. Smith measured 3.14 units, e.g. in the lab. J. R. Tolkien wrote books! "
        "Was it 2.5 km? Yes. The U.S. team won."
    )
    assert SPLIT(text, method="sentence", min_length=0) == [
        "Dr. Smith measured 3.14 units, e.g. in the lab.",
        "J. R. Tolkien wrote books!",
        "Was it 2.5 km?",
        "Yes.",
        "The U.S. team won.",
    ]


def test_sentence_split_does_not_cross_blank_lines():
    assert SPLIT("a heading\n\nNext line. Another.", method="sentence", min_length=0) == [
        "a heading",
        "Next line.",
        "Another.",
    ]


def test_chunk_overlap_and_sizes():
    text = " ".join(f"word{i}" for i in range(200))
    chunks = SPLIT(text, method="chunk", min_length=0, max_length=100, chunk_size=60, overlap=15)
    assert all(len(c) <= 60 for c in chunks)
    for left, right in itertools.pairwise(chunks):
        shared = set(left.split()) & set(right.split())
        assert shared, (left, right)  # consecutive chunks overlap by whole words
        assert right.split()[0] in left.split()
    assert chunks[0].startswith("word0 ") and chunks[-1].endswith("word199")
    assert set(words(chunks)) == set(text.split())


def test_chunk_without_overlap_partitions_the_words():
    text = " ".join(f"w{i}" for i in range(300))
    chunks = SPLIT(text, method="chunk", min_length=0, max_length=50)
    assert words(chunks) == text.split() and max(map(len, chunks)) <= 50


def test_chunk_bad_overlap_is_rejected():
    with pytest.raises(ValueError, match="overlap=50"):
        SPLIT("a b c " * 40, method="chunk", max_length=100, chunk_size=50, overlap=50, min_length=0)


def test_semantic_starts_new_chunk_at_topic_shift():
    cats = (
        "Cats purr when content. A cat sleeps most of the day. Many cats chase mice at night. "
        "Cats groom their fur often."
    )
    physics = (
        "Quantum particles exhibit superposition. Entangled particles share quantum states. "
        "Measurement collapses the quantum superposition."
    )
    chunks = SPLIT(cats + " " + physics, method="semantic", min_length=20, max_length=1000)
    assert chunks == [cats, physics]


def test_semantic_respects_paragraphs_and_max_length():
    para = "Cats purr when content. Cats sleep often. Cats chase mice. " * 6
    text = para.strip() + "\n\n" + para.strip()
    chunks = SPLIT(text, method="semantic", min_length=0, max_length=200)
    assert all(len(c) <= 200 for c in chunks) and len(chunks) >= 4
    assert words(chunks) == text.split()
    whole = SPLIT(text, method="semantic", min_length=0, max_length=10_000)
    assert len(whole) == 2  # one chunk per paragraph when nothing forces a cut


def test_regex_split_and_errors():
    text = "intro text\n# One\nbody one\n## Two\nbody two"
    assert SPLIT(text, method="regex", pattern=r"\n#+ ", min_length=0) == [
        "intro text",
        "One\nbody one",
        "Two\nbody two",
    ]
    with pytest.raises(ValueError, match="pattern"):
        SPLIT(text, method="regex", min_length=0)
    with pytest.raises(ValueError, match=r"pattern='\('"):
        SPLIT(text, method="regex", pattern="(", min_length=0)


@pytest.mark.parametrize("method", METHODS)
def test_empty_and_too_short_text_give_no_pieces(method):
    assert SPLIT("", method=method, pattern="x") == []
    assert SPLIT(" \n\n \t", method=method, pattern="x", min_length=0) == []
    assert SPLIT("tiny", method=method, pattern="x", min_length=10) == []
    assert SPLIT("tiny", method=method, pattern="x", min_length=4) == ["tiny"]


@pytest.mark.parametrize("method", NON_OVERLAPPING)
def test_one_huge_paragraph_is_split_under_max_length(method):
    text = " ".join(f"Sentence number {i} is here." for i in range(800))  # ~23k chars, no blank line
    pieces = SPLIT(text, method=method, min_length=100, max_length=500, pattern=r"\n\n")
    assert len(pieces) > 40 and all(len(p) <= 500 for p in pieces)
    assert words(pieces) == text.split()


def test_a_single_word_longer_than_max_length_is_cut():
    pieces = SPLIT("x" * 250, method="paragraph", min_length=0, max_length=100)
    assert pieces == ["x" * 100, "x" * 100, "x" * 50]


def test_short_pieces_are_merged_into_neighbours_not_dropped():
    text = "Hi.\n\nA much longer paragraph that is fine on its own.\n\nOk.\n\nBye."
    pieces = SPLIT(text, method="paragraph", min_length=10, max_length=200)
    assert pieces == ["Hi.\n\nA much longer paragraph that is fine on its own.\n\nOk.\n\nBye."]
    pieces = SPLIT(text, method="paragraph", min_length=10, max_length=53)
    assert pieces == ["Hi.\n\nA much longer paragraph that is fine on its own.", "Ok.\n\nBye."]


def test_short_piece_that_cannot_fit_is_kept():
    text = "a" * 40 + "\n\nb\n\n" + "c" * 40
    assert SPLIT(text, method="paragraph", min_length=5, max_length=42) == ["a" * 40, "b", "c" * 40]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "words"}, "method='words'"),
        ({"min_length": 500, "max_length": 100}, "min_length=500 and max_length=100"),
        ({"max_length": 0, "min_length": 0}, "max_length=0"),
        ({"min_length": -1}, "min_length=-1"),
    ],
)
def test_bad_arguments_name_the_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SPLIT("some text here", **kwargs)


def test_class_level_call_and_instance_defaults():
    text = "One sentence here. Another sentence there."
    assert DocumentProcessor.split_text(text, method="sentence", min_length=0) == [
        "One sentence here.",
        "Another sentence there.",
    ]
    proc = DocumentProcessor(method="sentence", min_length=0, max_length=30)
    assert proc.split_text(text) == ["One sentence here.", "Another sentence there."]
    with pytest.raises(ValueError, match="method='bogus'"):
        DocumentProcessor(method="bogus")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("ab cD.?!\n\t,é")), max_size=400),
    method=st.sampled_from(NON_OVERLAPPING),
    min_length=st.integers(0, 30),
    extra=st.integers(1, 80),
)
def test_properties_every_method_keeps_words_and_obeys_max(text, method, min_length, extra):
    max_length = min_length + extra
    pieces = SPLIT(text, method=method, min_length=min_length, max_length=max_length, pattern=r"\.")
    assert all(0 < len(p) <= max_length and p == p.strip() for p in pieces)
    if len(text.strip()) >= min_length and method != "regex":
        assert "".join(words(pieces)) == "".join(text.split())


def test_text_that_is_not_a_str_is_a_value_error():
    with pytest.raises(ValueError, match="text must be a str; got bytes"):
        SPLIT(b"some bytes", method="sentence")


def test_docstring_examples_of_both_modules_hold():
    import doctest

    import rag.sentences
    import rag.splitters

    for module in (rag.sentences, rag.splitters):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
