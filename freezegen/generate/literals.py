"""Python source for plain values, safe for any user string and stable under ``ruff format``.

Every value a spec holds reaches the generated script through :func:`assignment`, never by
pasting text into a template: a model path containing quotes, newlines or
``"); import os; os.system("...")`` becomes a string literal and nothing else. The layout is the
one ``ruff format`` would choose (double quotes where they need no more escapes, a collection
that does not fit on its line exploded one item per line with a magic trailing comma), so the
script passes ``ruff format --check`` without ruff being run on it.
"""

from __future__ import annotations

import math

LINE_LENGTH = 100
_INDENT = "    "


def string(value: str) -> str:
    """Return a literal for ``value`` in the quotes ``ruff format`` prefers.

    Non-ASCII characters are escaped: look-alikes (a multiplication sign for ``x``) would trip
    ruff's RUF001, and invisible ones would hide what a path really is.
    """
    quote = "'" if value.count('"') > value.count("'") else '"'
    # Character by character: escaping the whole repr and then un-escaping its quotes cannot
    # tell an escaped quote from an escaped backslash before a quote (a\\'b).
    body = "".join(
        "\\" + ch if ch == quote else ch if ch in "'\"" else ascii(ch)[1:-1] for ch in value
    )
    return quote + body + quote


def _scalar(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"float({string(repr(value))})"
        return repr(value)
    if isinstance(value, str):
        return string(value)
    return None


def literal(value: object, indent: int = 0, room: int = LINE_LENGTH) -> str:
    """Return source for ``value`` (None, bool, int, float, str, list, tuple, dict of those).

    ``room`` is how many columns the literal may use on its first line; collections that do not
    fit are exploded, each item on its own line at ``indent + 1`` levels. Raises TypeError for
    any other type, so an unexpected object can never be rendered through its ``repr``.
    """
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("only dicts with string keys can be rendered")
        items = [(string(k) + ": ", v) for k, v in value.items()]
        open_, close = "{", "}"
    elif isinstance(value, (list, tuple)):
        items = [("", v) for v in value]
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")")
    else:
        raise TypeError(f"cannot render a {type(value).__name__} as a literal")
    if not items:
        return open_ + close
    flat = [prefix + literal(v, indent, LINE_LENGTH * 10) for prefix, v in items]
    inline = ", ".join(flat)
    if isinstance(value, tuple) and len(flat) == 1:
        inline += ","
    text = open_ + inline + close
    if len(text) <= room and "\n" not in text:
        return text
    pad = _INDENT * (indent + 1)
    lines = []
    for prefix, v in items:
        inner_room = LINE_LENGTH - len(pad) - len(prefix) - 1  # the trailing comma
        lines.append(pad + prefix + literal(v, indent + 1, inner_room) + ",")
    return open_ + "\n" + "\n".join(lines) + "\n" + _INDENT * indent + close


def assignment(name: str, value: object, comment: str | None = None) -> str:
    """Return ``NAME = <literal>`` (optionally with a trailing comment), ruff-clean.

    A line that cannot be made to fit (one long string) carries ``# noqa: E501``, because
    ``ruff format`` cannot split a string and ``ruff check`` would flag the line.
    """
    prefix = f"{name} = "
    suffix = f"  # {comment}" if comment else ""
    text = prefix + literal(value, 0, LINE_LENGTH - len(prefix) - len(suffix)) + suffix
    if isinstance(value, str) and len(text) > LINE_LENGTH:
        inner = _INDENT + literal(value)
        if len(inner) <= LINE_LENGTH:
            # What ruff format does with a string that fits once moved to its own line.
            return f"{prefix}({suffix}\n{inner}\n)"
    return "\n".join(
        line + "  # noqa: E501" if _overlong(line) else line for line in text.split("\n")
    )


def _overlong(line: str) -> bool:
    """Whether ruff's E501 flags ``line`` (it spares one-word lines and a URL at the end)."""
    if len(line) <= LINE_LENGTH:
        return False
    chunks = line.split()
    if len(chunks) < 2:
        return False
    return not ("://" in chunks[-1] and len(line) - len(chunks[-1]) <= LINE_LENGTH)
