"""Reading training text: one file, a folder of .txt/.md files, strict or lenient UTF-8, whole or streamed.

Errors are one line and name what to do: a byte that is not UTF-8 is reported with its file and byte offset and
the ``--encoding_errors replace`` way out; a NUL byte (binary data) is reported the same way.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path

from minillm.errors import InputError

TEXT_SUFFIXES = (".txt", ".md")
ERROR_MODES = ("strict", "replace", "ignore")
_HINT = "pass --encoding_errors replace (encoding_errors='replace') to read it anyway"


def check_errors_mode(encoding_errors: str) -> None:
    if encoding_errors not in ERROR_MODES:
        raise InputError(f"encoding_errors={encoding_errors!r} is unknown; valid: {', '.join(ERROR_MODES)}")


def list_text_files(path: str | os.PathLike) -> list[Path]:
    """The .txt/.md files of a folder (recursive, sorted by relative path), or ``[path]`` for a file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data path {str(path)!r} does not exist")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"folder {str(path)!r} has no {'/'.join(TEXT_SUFFIXES)} files")
    return files


def decode_bytes(
    data: bytes,
    encoding_errors: str = "strict",
    source: str = "<bytes>",
    offset: int = 0,
    final: bool = True,
    decoder: codecs.IncrementalDecoder | None = None,
) -> str:
    """UTF-8 text of ``data``; in strict mode a bad or NUL byte raises ValueError naming its byte offset.

    ``offset`` is where ``data`` starts in its file; pass one ``decoder`` across calls to decode a stream.

    >>> decode_bytes(b"caf\\xc3\\xa9")
    'café'
    >>> decode_bytes(b"ab\\xff", encoding_errors="replace")
    'ab\\ufffd'
    """
    check_errors_mode(encoding_errors)
    nul = data.find(b"\0")
    if nul >= 0 and encoding_errors == "strict":
        raise InputError(
            f"{source} looks binary (NUL byte at byte offset {offset + nul}); expected UTF-8 text; {_HINT}"
        )
    decoder = decoder or codecs.getincrementaldecoder("utf-8")(encoding_errors)
    try:
        text = decoder.decode(data, final)
    except UnicodeDecodeError as exc:
        pending = len(decoder.getstate()[0])  # undecoded bytes from the previous chunk come first
        raise InputError(
            f"{source} is not valid UTF-8 (first bad byte at byte offset {offset + exc.start - pending}"
            f"); {_HINT}"
        ) from None
    return text.replace("\0", "\ufffd") if nul >= 0 else text


def read_text(path: str | os.PathLike, encoding_errors: str = "strict", allow_empty: bool = False) -> str:
    """The whole text of one file (BOM removed).

    Raises FileNotFoundError when missing and ValueError when it is not UTF-8 text or (unless ``allow_empty``,
    which returns "" instead) holds only whitespace.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    text = decode_bytes(path.read_bytes(), encoding_errors, source=f"file {str(path)!r}")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        if allow_empty:
            return ""
        raise InputError(f"data file {str(path)!r} is empty (no text to train on)")
    return text


def iter_text_chunks(
    path: str | os.PathLike, encoding_errors: str = "strict", chunk_bytes: int = 1 << 20
) -> Iterator[str]:
    """Decoded text of a file in pieces of about ``chunk_bytes`` bytes, never the whole file at once."""
    check_errors_mode(encoding_errors)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    decoder = codecs.getincrementaldecoder("utf-8")(encoding_errors)
    offset, first = 0, True
    with path.open("rb") as handle:
        while True:
            data = handle.read(chunk_bytes)
            text = decode_bytes(data, encoding_errors, f"file {str(path)!r}", offset, not data, decoder)
            offset += len(data)
            if first and text:
                text, first = text.removeprefix("\ufeff"), False
            if text:
                yield text
            if not data:
                return


def iter_paragraphs(
    path: str | os.PathLike,
    encoding_errors: str = "strict",
    chunk_bytes: int = 1 << 20,
    max_chars: int = 1 << 16,
) -> Iterator[str]:
    """Consecutive pieces of a file that end just after a blank line (or hold ``max_chars`` characters).

    Joining the pieces gives the file's text back exactly; memory stays near ``chunk_bytes + max_chars``.
    """
    buffer = ""
    for text in iter_text_chunks(path, encoding_errors, chunk_bytes):
        buffer += text
        pos = 0
        while pos < len(buffer):
            cut = buffer.find("\n\n", pos, pos + max_chars)
            if cut >= 0:
                cut += 2
                while cut < len(buffer) and buffer[cut] == "\n":
                    cut += 1
            elif len(buffer) - pos >= max_chars:
                space = max(buffer.rfind("\n", pos, pos + max_chars), buffer.rfind(" ", pos, pos + max_chars))
                cut = space + 1 if space > pos else pos + max_chars
            else:
                break
            if cut == len(buffer):  # more newlines may follow in the next chunk
                break
            yield buffer[pos:cut]
            pos = cut
        buffer = buffer[pos:]
    if buffer:
        yield buffer
