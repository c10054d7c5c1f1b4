"""GitHub Actions workflow commands: ``::error file=..,line=..,col=..,title=FG102::message``."""

from __future__ import annotations

from freezegen.diagnostics import Diagnostic
from freezegen.report.printable import printable


def _escape_data(s: str) -> str:
    # printable() writes line breaks (and every other control character: an escape sequence,
    # U+2028) as backslash escapes, so the workflow command stays one line; "%" is GitHub's own.
    return printable(s).replace("%", "%25")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def render(
    diagnostics: list[Diagnostic], *, files: int = 0, color: bool = False, tool: str = "lint"
) -> str:
    lines = []
    for d in diagnostics:
        props = [
            f"file={_escape_property(d.path)}",
            f"line={d.line}",
            f"col={d.col}",
            f"title={_escape_property(f'freezegen {d.code}')}",
        ]
        message = d.message + (f" ({d.fix})" if d.fix else "")
        lines.append(f"::{d.severity.value} {','.join(props)}::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)
