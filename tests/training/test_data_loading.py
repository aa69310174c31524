"""load_and_split_data: text files, folders, JSONL formats, deterministic splits, and every bad input."""

from __future__ import annotations

import json

import pytest

from training import load_and_split_data
from training.data.text import iter_paragraphs

PARAS = [f"Paragraph {i} talks about topic {i} in a sentence long enough to stand alone." for i in range(20)]


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_text_file_is_split_shuffled_and_divided(tmp_path):
    file = write(tmp_path / "a.txt", "\n\n".join(PARAS))
    train, val, test = load_and_split_data(file, val_split=0.2, test_split=0.1, min_length=10)
    assert (len(train), len(val), len(test)) == (14, 4, 2)
    assert sorted(train + val + test) == sorted(PARAS)
    assert train + val + test != PARAS  # shuffled
    assert load_and_split_data(file, val_split=0.2, test_split=0.1, min_length=10) == (train, val, test)
    other = load_and_split_data(file, val_split=0.2, test_split=0.1, seed=7, min_length=10)
    assert other != (train, val, test)


def test_split_options_reach_the_splitter(tmp_path):
    file = write(tmp_path / "a.md", " ".join(PARAS))
    train, val, _ = load_and_split_data(
        file, split_method="chunk", val_split=0.25, min_length=0, max_length=100, overlap=20
    )
    pieces = train + val
    plain, _, _ = load_and_split_data(file, split_method="chunk", val_split=0.0, min_length=0, max_length=100)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) > len(plain)  # overlap gives more chunks
    sentences, _, _ = load_and_split_data(file, split_method="sentence", val_split=0.0, min_length=0)
    assert sorted(sentences) == sorted(PARAS)


def test_folder_is_read_recursively_in_sorted_order_without_crossing_files(tmp_path):
    (tmp_path / "b").mkdir()
    write(tmp_path / "b" / "z.txt", "tail of file z")
    write(tmp_path / "a.md", "alpha from a")
    write(tmp_path / "ignored.json", "not read")
    items, _, _ = load_and_split_data(tmp_path, val_split=0.0, min_length=12, max_length=100, seed=0)
    assert sorted(items) == ["alpha from a", "tail of file z"]  # two short files are not merged together


def test_jsonl_formats_are_kept(tmp_path):
    rows = [
        {"text": "plain text line"},
        {"input": "2+2", "output": "4"},
        {"instruction": "Translate", "input": "chat", "output": "cat"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        {"source": "bonjour", "target": "hello"},
    ]
    file = write_jsonl(tmp_path / "d.jsonl", rows)
    train, val, test = load_and_split_data(file, val_split=0.2)
    assert len(val) == 1 and not test
    everything = train + val
    assert "plain text line" in everything
    for row in rows[1:]:
        assert row in everything


def test_encoding_errors_replace_goes_on(tmp_path):
    file = tmp_path / "bad.txt"
    file.write_bytes(b"Good text here.\n\nBad \xff byte here, long enough to keep.")
    items, _, _ = load_and_split_data(file, val_split=0.0, min_length=0, encoding_errors="replace")
    assert "Bad \ufffd byte here, long enough to keep." in items


@pytest.mark.parametrize(
    "content, offset", [(b"abc\xffdef", 3), (b"caf\xc3\xa9 \xc3(", 6), (b"x" * 10 + b"\x00y", 10)]
)
def test_non_utf8_and_binary_report_byte_offset(tmp_path, content, offset):
    file = tmp_path / "bad.txt"
    file.write_bytes(content)
    with pytest.raises(ValueError, match=rf"byte offset {offset}\b.*--encoding_errors replace"):
        load_and_split_data(file, min_length=0)


def test_streamed_reading_reports_offsets_across_chunks(tmp_path):
    file = tmp_path / "bad.txt"
    file.write_bytes("é".encode() * 5000 + b"\xff")  # the bad byte sits in the third 4 KB chunk
    with pytest.raises(ValueError, match="byte offset 10000"):
        list(iter_paragraphs(file, chunk_bytes=4096))
    split = "é".encode() * 2049 + b"\n\nok"  # a 2-byte character cut by every chunk boundary
    file.write_bytes(split)
    assert "".join(iter_paragraphs(file, chunk_bytes=4095)) == split.decode()


@pytest.mark.parametrize(
    "name, content, error, message",
    [
        ("missing.txt", None, FileNotFoundError, "does not exist"),
        ("empty.txt", "", ValueError, "is empty"),
        ("blank.txt", " \n\n\t\n", ValueError, "is empty"),
        ("empty.jsonl", "\n\n", ValueError, "is empty"),
        ("bad.jsonl", '{"text": "ok"}\n{"text": \n', ValueError, "line 2 .* not valid JSON"),
        ("list.jsonl", '{"text": "ok"}\n\n[1, 2]\n', ValueError, "line 3 .* JSON list"),
        (
            "shape.jsonl",
            '{"prompt": "p", "completion": "c"}\n',
            ValueError,
            r"line 1 .*\['completion', 'prompt'\]",
        ),
        ("types.jsonl", '{"text": 5}\n', ValueError, "line 1 .*'text' must be a string"),
    ],
)
def test_bad_inputs_give_one_line_errors(tmp_path, name, content, error, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(error, match=message) as info:
        load_and_split_data(path)
    assert "\n" not in str(info.value)


def test_empty_folder_and_too_short_text(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(FileNotFoundError, match="no .txt/.md files"):
        load_and_split_data(tmp_path / "sub")
    file = write(tmp_path / "short.txt", "tiny")
    with pytest.raises(ValueError, match="shorter than min_length"):
        load_and_split_data(file, min_length=50)


def test_empty_validation_split_says_how_many_pieces(tmp_path):
    file = write(tmp_path / "few.txt", "\n\n".join(PARAS[:5]))
    with pytest.raises(ValueError, match=r"only 5 piece\(s\), so val_split=0.1 .* at least 10 pieces"):
        load_and_split_data(file, val_split=0.1, min_length=0)
    train, val, _ = load_and_split_data(file, val_split=0.0, min_length=0)
    assert len(train) == 5 and val == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"val_split": 1.5}, "val_split=1.5"),
        ({"val_split": 0.5, "test_split": 0.5}, "must be below 1"),
        ({"encoding_errors": "loose"}, "encoding_errors='loose'"),
        ({"split_method": "words"}, "method='words'"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    file = write(tmp_path / "a.txt", "\n\n".join(PARAS))
    with pytest.raises(ValueError, match=message):
        load_and_split_data(file, **kwargs)


def test_folder_skips_empty_files_but_not_when_all_are_empty(tmp_path, caplog):
    folder = tmp_path / "docs"
    folder.mkdir()
    write(folder / "a.txt", "\n\n".join(PARAS))
    write(folder / "b.txt", "   \n")  # an empty file among others is skipped with a warning
    train, val, _ = load_and_split_data(folder, val_split=0.2, min_length=10)
    assert sorted(train + val) == sorted(PARAS)
    assert "b.txt" in caplog.text and "empty" in caplog.text
    write(folder / "a.txt", "")
    with pytest.raises(ValueError, match="all 2 text files .* are empty"):
        load_and_split_data(folder, min_length=10)
    with pytest.raises(ValueError, match="is empty"):  # one file on its own must hold text
        load_and_split_data(folder / "a.txt")


def test_jsonl_lines_end_at_newline_only(tmp_path):
    """A JSON string may hold U+2029 (the shipped PubMedQA file does): it does not end the line."""
    import json

    from training.data.formats import read_jsonl

    path = tmp_path / "para.jsonl"
    path.write_text(json.dumps({"text": "one\u2029two\u2028three"}, ensure_ascii=False) + "\r\n"
                    + json.dumps({"text": "four"}) + "\n", encoding="utf-8")
    assert read_jsonl(path) == ["one\u2029two\u2028three", "four"]
