"""The GPT-2 byte <-> printable-character table used by every byte-level BPE.

Byte-level BPE works on bytes, but vocabularies are stored as strings. GPT-2 maps each of the 256 byte values
to one printable Unicode character so a token is always a valid string: printable Latin-1 bytes map to
themselves and the rest (control bytes, space, 127-160, 173) are shifted to U+0100 and above, in byte order.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import TokenizerInputError


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Return the GPT-2 map from byte value to printable character.

    Example:
        >>> table = bytes_to_unicode()
        >>> table[ord("a")], table[ord(" ")], table[ord("\\n")]
        ('a', 'Ġ', 'Ċ')
    """
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """Inverse of :func:`bytes_to_unicode`.

    Example:
        >>> unicode_to_bytes()["Ġ"]
        32
    """
    return {char: byte for byte, char in bytes_to_unicode().items()}


@lru_cache(maxsize=1)
def byte_alphabet() -> list[str]:
    """The 256 byte characters sorted by code point, the order HF's BpeTrainer gives them ids in.

    This is also GPT-2's order: printable bytes first, then the shifted ones.

    Example:
        >>> alphabet = byte_alphabet()
        >>> len(alphabet), alphabet[0], alphabet[-1]
        (256, '!', 'Ń')
    """
    return sorted(bytes_to_unicode().values())


def text_to_byte_chars(text: str) -> str:
    """Map a string to its byte-level form (one character per UTF-8 byte).

    Raises ValueError for strings that cannot be UTF-8 encoded (lone surrogates).

    Example:
        >>> text_to_byte_chars(" hé")
        'ĠhÃ©'
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TokenizerInputError(
            f"text holds a lone surrogate {text[exc.start : exc.end]!r} at index {exc.start}, which has no UTF-8 "
            "encoding; pass valid Unicode text"
        ) from None
    return data.decode("latin-1").translate(_latin1_table())


def byte_chars_to_bytes(chars: str) -> bytes:
    """Invert :func:`text_to_byte_chars` (bytes, since a token may hold part of a UTF-8 character).

    Raises ValueError on a character outside the 256-character byte alphabet.

    Example:
        >>> byte_chars_to_bytes("ĠhÃ©").decode("utf-8")
        ' hé'
    """
    table = unicode_to_bytes()
    try:
        return bytes(table[c] for c in chars)
    except KeyError as exc:
        raise TokenizerInputError(
            f"token {chars!r} holds {exc.args[0]!r}, which is not a byte-level character; byte-level "
            "tokens use only the 256 characters of bytes_to_unicode()"
        ) from None


def decode_table(id_to_token: list[str | None]) -> list[bytes | None]:
    """The bytes of each token id (None for ids without a token), as HF's ByteLevel decoder gives them.

    A token outside the byte alphabet (an added token such as ``<|endoftext|>``) is kept as its UTF-8 text.

    Example:
        >>> decode_table(["Ġh", None, "<|endoftext|>"])
        [b' h', None, b'<|endoftext|>']
    """
    byte_of = {char: bytes([byte]) for byte, char in bytes_to_unicode().items()}
    return [
        None
        if token is None
        else b"".join(byte_of[c] for c in token)
        if all(c in byte_of for c in token)
        else token.encode("utf-8")
        for token in id_to_token
    ]


@lru_cache(maxsize=1)
def _latin1_table() -> dict[int, str]:
    return {byte: char for byte, char in bytes_to_unicode().items()}
