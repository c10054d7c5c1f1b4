"""Writing a generated file, or checking that the one on disk is current (``--check``)."""

from __future__ import annotations

from pathlib import Path

from freezegen._io import write_atomic
from freezegen.commands.result import CommandResult


def write_or_check(text: str, output: Path, *, check: bool, rerun: str) -> CommandResult:
    """Write ``text`` to ``output`` atomically, or with ``check`` compare it with the file.

    Returns exit status 1 when the file on disk differs (or is unreadable), with a message
    naming ``rerun``, the command that brings it up to date; 0 otherwise.
    """
    result = CommandResult()
    if check:
        try:
            current = output.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            result.exit_code = 1
            result.err(f"{output} is out of date; run: {rerun}")
        return result
    write_atomic(output, text)
    result.written.append(output)
    result.err(f"wrote {output}")
    return result
