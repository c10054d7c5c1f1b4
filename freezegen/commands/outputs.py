"""Writing a generated file, or checking that the one on disk is current (``--check``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from freezegen._io import ReadRefused, WriteRefused, read_bytes, write_file
from freezegen.commands.result import CommandResult, UsageError

STDOUT = Path("-")
"""``-o -``: standard output (Path reads ``./-`` as ``-`` too, so a file of that name needs
its full path: ``-o "$PWD/-"``)."""


def write_or_check(
    text: str, output: Path, *, check: bool, rerun: str, inputs: Iterable[Path] = ()
) -> CommandResult:
    """Write ``text`` to ``output`` atomically (to stdout for ``-``), or with ``check`` compare
    it with the file.

    Returns exit status 1 when the file on disk differs (or is unreadable), with a message
    naming ``rerun``, the command that brings it up to date; 0 otherwise. Raises UsageError
    when ``check`` has no file to compare, or when ``output`` may not be written (a folder, a
    device or FIFO, a read-only file or folder, one of ``inputs``): nothing is written then.
    """
    result = CommandResult()
    if check:
        if output == STDOUT:
            raise UsageError("--check needs -o FILE, not -o - (standard output)")
        expected = text.encode("utf-8")
        try:  # a longer file differs: reading stops there, and at anything but a regular file
            current: bytes | None = read_bytes(output, len(expected))
        except ReadRefused:
            current = None
        if current != expected:
            result.exit_code = 1
            result.err(f"{output} is out of date; run: {rerun}")
        return result
    if output == STDOUT:
        result.out(text)
        return result
    try:
        write_file(output, text, inputs)
    except WriteRefused as exc:
        raise UsageError(str(exc)) from None
    result.written.append(output)
    result.err(f"wrote {output}")
    return result
