"""Diagnostic text made safe to print: what a file holds never acts on the terminal or log.

Keys, values and file names reach messages verbatim. Printed raw, a newline in a key forges a
line of output ("All checks passed."), an escape sequence drives the terminal, a bidi override
reorders what is read. Every character Python does not call printable (controls, format
characters, line and paragraph separators, non-breaking spaces) is shown as its escape.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """Return ``text`` with every non-printable character written as a Python-style escape
    (``\\n``, ``\\x1b``, ``\\u2028``); printable text comes back unchanged."""
    if text.isprintable():  # the common case, decided in C
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )
