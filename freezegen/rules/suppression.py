"""Inline suppression: ``# freezegen: ignore`` or ``# freezegen: ignore[FG202, FG5]`` on a line.

One parser for spec (YAML) and script (Python) lines alike. Codes in the brackets are prefixes,
matched case-insensitively (``ignore[fg102]`` works too); no brackets silence every code.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"#\s*freezegen:\s*ignore(?:\[([A-Za-z0-9,\s]*)\])?")


def suppresses(line: str, code: str) -> bool:
    """Return True when ``line`` carries a suppression comment that covers ``code``."""
    if "freezegen" not in line:  # the common case, decided without the regex
        return False
    match = _COMMENT.search(line)
    if match is None:
        return False
    codes = [c.strip().upper() for c in (match.group(1) or "").split(",") if c.strip()]
    return not codes or any(code.startswith(c) for c in codes)
