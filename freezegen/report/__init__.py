"""Reporters: the same findings as ruff-like text, JSON, SARIF 2.1.0 or GitHub annotations."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from freezegen.diagnostics import Diagnostic

FORMATS = ("text", "json", "sarif", "github")


def render(
    fmt: str,
    diagnostics: Sequence[Diagnostic],
    *,
    files: int = 0,
    color: bool = False,
    tool: str = "lint",
) -> str:
    """Return ``diagnostics`` rendered in ``fmt`` (one of FORMATS), ending with a newline."""
    renderers: dict[str, Callable[..., str]]
    from freezegen.report import github, json_report, sarif, text

    renderers = {
        "text": text.render,
        "json": json_report.render,
        "sarif": sarif.render,
        "github": github.render,
    }
    return renderers[fmt](list(diagnostics), files=files, color=color, tool=tool)
