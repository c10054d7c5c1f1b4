"""Python source files as ``check`` and ``codemod`` read and write them.

Read bounded (a training script is kilobytes; anything past the limit is refused, never read
to the end), decoded as Python decodes it (a UTF-8 BOM, or the PEP 263 declaration in the
first two lines, else UTF-8), and written back in that same encoding, BOM included.
"""

from __future__ import annotations

from pathlib import Path

from freezegen._io import read_bytes

MAX_SOURCE_BYTES = 2 * 1024 * 1024
"""The largest Python file check and codemod read or parse (2 MiB, about 50,000 lines; the
largest file in transformers is 280 KB)."""
DECODE_HELP = "save it as UTF-8 or declare its encoding (PEP 263)"
"""What to do about a file that does not decode."""


class CannotEncode(ValueError):
    """Text holds a character its file's declared encoding cannot represent."""


def read_source(path: str | Path) -> bytes:
    """The bytes of the Python file at ``path``.

    Raises ReadRefused (missing, unreadable, not a regular file, a symlink loop) and TooLarge
    (over MAX_SOURCE_BYTES), both from :mod:`freezegen._io`.
    """
    return read_bytes(path, MAX_SOURCE_BYTES)


def source_encoding(data: bytes) -> str:
    """The encoding Python reads ``data`` with: "utf-8-sig" after a UTF-8 BOM, the declared
    one (normalised: "iso-8859-1" for latin-1), else "utf-8".

    Raises SyntaxError for an unknown declaration or one that contradicts a BOM.
    """
    import io
    import tokenize

    return tokenize.detect_encoding(io.BytesIO(data).readline)[0]


def encode_source(text: str, encoding: str) -> bytes:
    """``text`` as bytes in ``encoding`` ("utf-8-sig" puts the BOM back in front).

    Raises CannotEncode naming the first character the encoding cannot hold and its line.
    """
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        line = text.count("\n", 0, exc.start) + 1
        raise CannotEncode(
            f"line {line} would hold {char!r} (U+{ord(char):04X}), which the file's "
            f"encoding ({encoding}) cannot represent"
        ) from None
