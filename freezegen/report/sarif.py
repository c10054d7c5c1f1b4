"""SARIF 2.1.0, for GitHub code scanning and other static-analysis dashboards.

Artifact locations are URI references (SARIF 2.1.0 §3.10): a relative path is percent-encoded
as a relative reference, an absolute one becomes a ``file:`` URI. Columns are counted in Unicode
code points, as Python's parser, libcst and the YAML loader count them, and the run says so
(``columnKind``; the default a consumer would assume is UTF-16 code units).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from freezegen._version import __version__
from freezegen.diagnostics import Diagnostic, Severity

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(
    diagnostics: list[Diagnostic], *, files: int = 0, color: bool = False, tool: str = "lint"
) -> str:
    from freezegen.rules.catalog import rule_for

    codes = sorted({d.code for d in diagnostics})
    rules = []
    for code in codes:
        rule = rule_for(code)
        entry: dict[str, object] = {"id": code}
        if rule is not None:
            entry["name"] = rule.name
            entry["shortDescription"] = {"text": rule.summary}
            entry["defaultConfiguration"] = {"level": _level(rule.severity)}
        rules.append(entry)
    results = []
    for d in diagnostics:
        text = d.message + (f" ({d.fix})" if d.fix else "")
        region: dict[str, int] = {"startLine": max(d.line, 1)}
        if d.col > 0:
            region["startColumn"] = d.col
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": codes.index(d.code),
                "level": _level(d.severity),
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(d.path)},
                            "region": region,
                        }
                    }
                ],
            }
        )
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "freezegen",
                        "version": __version__,
                        "informationUri": "https://github.com/freezegen/freezegen",
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _uri(path: str) -> str:
    """``path`` as a URI reference: ``file:`` when absolute, percent-encoded (as UTF-8, or the
    file system's bytes for an undecodable name) either way; ``:`` is encoded too, so a first
    segment like ``c:x.py`` cannot read as a scheme."""
    p = Path(path)
    return p.as_uri() if p.is_absolute() else quote(os.fsencode(p.as_posix()), safe="/")
