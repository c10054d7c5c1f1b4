"""A file's change as the unified diff every ``--diff`` prints (git's ``a/`` and ``b/`` names)."""

from __future__ import annotations

import difflib


def unified(before: str, after: str, path: str) -> str:
    """The unified diff from ``before`` to ``after`` of the file ``path`` (empty when equal)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{path}",
            f"b/{path}",
        )
    )
