"""Machine-readable JSON: ``{"diagnostics": [...], "summary": {...}}``."""

from __future__ import annotations

import json

from freezegen.diagnostics import Diagnostic, count_by_severity


def render(
    diagnostics: list[Diagnostic], *, files: int = 0, color: bool = False, tool: str = "lint"
) -> str:
    counts = count_by_severity(diagnostics)
    payload = {
        "diagnostics": [d.to_dict() for d in diagnostics],
        "summary": {"files": files, **{str(k): v for k, v in counts.items()}},
    }
    return json.dumps(payload, indent=2) + "\n"
