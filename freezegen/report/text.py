"""Ruff-like text: ``path:line:col: FG102 message``, a help line, and a summary."""

from __future__ import annotations

from freezegen.diagnostics import Diagnostic, Severity, count_by_severity
from freezegen.report.printable import printable

_BOLD, _RED, _YELLOW, _CYAN, _DIM, _RESET = (
    "\x1b[1m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[36m",
    "\x1b[2m",
    "\x1b[0m",
)


def render(
    diagnostics: list[Diagnostic], *, files: int = 0, color: bool = False, tool: str = "lint"
) -> str:
    def paint(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if color else s

    lines = []
    for d in diagnostics:
        # line 0 is the whole file (it cannot be read, written or parsed): no position to give
        at = f":{d.line}:{d.col}" if d.line else ""
        where = paint(_BOLD, f"{printable(d.path)}{at}:")
        tint = _RED if d.severity is Severity.ERROR else _YELLOW
        label = "" if d.severity is Severity.ERROR else paint(_YELLOW, "warning: ")
        lines.append(f"{where} {paint(tint, d.code)} {label}{printable(d.message)}")
        if d.fix:
            lines.append(f"  {paint(_CYAN, 'help:')} {printable(d.fix)}")
    counts = count_by_severity(diagnostics)
    errors, warnings = counts[Severity.ERROR], counts[Severity.WARNING]
    checked = f"{files} file{'s' if files != 1 else ''}"
    if not diagnostics:
        lines.append(paint(_DIM, f"All checks passed ({checked})."))
    else:
        parts = [f"{errors} error{'s' if errors != 1 else ''}"] if errors else []
        if warnings:
            parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
        lines.append(f"Found {' and '.join(parts)} in {checked}.")
    return "\n".join(lines) + "\n"
