"""Inline suppression: ``# freezegen: ignore`` or ``# freezegen: ignore[FG202, FG5]`` on a line.

One parser for spec (YAML) and script (Python) lines alike. Codes in the brackets are prefixes,
matched case-insensitively (``ignore[fg102]`` works too); no brackets silence every code.

A finding's line number is its parser's, so the comment is looked for on the line as that parser
counts lines (:func:`source_lines`), not as ``str.splitlines`` does: that also splits on form
feeds, \\x1c-\\x1e, \\x85, U+2028 and U+2029, and a comment after one of them would silence
a finding on another line.
"""

from __future__ import annotations

import re
from typing import Literal

_COMMENT = re.compile(r"#\s*freezegen:\s*ignore(?:\[([A-Za-z0-9,\s]*)\])?")
_LINE_BREAKS = {
    "python": re.compile(r"\r\n|\r|\n"),  # the tokenizer's, and libcst's
    "yaml": re.compile("\r\n|[\r\n\x85\u2028\u2029]"),  # YAML 1.1 (PyYAML and libyaml alike)
}


def source_lines(text: str, syntax: Literal["python", "yaml"] = "python") -> list[str]:
    """The lines of ``text`` as the ``syntax`` ("python" or "yaml") parser counts them, without
    their line breaks: line N of a finding is ``source_lines(text)[N - 1]``. Text ending in a
    line break has an empty last line."""
    return _LINE_BREAKS[syntax].split(text)


def suppresses(line: str, code: str) -> bool:
    """Return True when ``line`` carries a suppression comment that covers ``code``."""
    if "freezegen" not in line:  # the common case, decided without the regex
        return False
    match = _COMMENT.search(line)
    if match is None:
        return False
    codes = [c.strip().upper() for c in (match.group(1) or "").split(",") if c.strip()]
    return not codes or any(code.startswith(c) for c in codes)
