"""Run every selected rule over a spec in one pass and apply suppressions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from freezegen._files import expand_paths as _expand
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.config import ConfigError, LintOptions, Overrides, check_selectors, options_for
from freezegen.lint.context import LintContext
from freezegen.lint.registry import all_rules
from freezegen.spec import LoadResult, load, load_text
from freezegen.spec.models import SPEC_FILENAME

_SUPPRESS = re.compile(r"#\s*freezegen:\s*ignore(?:\[([A-Za-z0-9,\s]*)\])?")


@dataclass
class LintReport:
    """Every finding of one ``lint`` run, and how many files were looked at."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    strict: bool = False

    @property
    def failed(self) -> bool:
        """True when an error (or, with strict, a warning) was found."""
        return any(self.strict or d.severity is Severity.ERROR for d in self.diagnostics)


# [tool.freezegen] is shared with `freezegen check`, which owns FG5xx and validates those codes
# itself; naming its real rules here would import libcst into every lint run.
CHECK_CODE_SPACE = [f"FG5{i:02d}" for i in range(100)]


def known_codes() -> list[str]:
    return [r.code for r in all_rules()]


def lint_paths(paths: Iterable[str | Path], overrides: Overrides | None = None) -> LintReport:
    """Lint spec files (folders are searched for ``*freezegen.yaml``); findings are data.

    Raises ConfigError for malformed selectors or pyproject.toml, FileNotFoundError for a path
    that does not exist.
    """
    overrides = overrides or Overrides()
    known = known_codes()
    if overrides.select is not None:
        check_selectors(overrides.select, known, "--select")
    check_selectors(overrides.ignore, known, "--ignore")
    report = LintReport(strict=bool(overrides.strict))
    for path in expand_paths(paths):
        options = options_for(path, overrides, known + CHECK_CODE_SPACE)
        report.strict = report.strict or options.strict
        report.diagnostics.extend(lint_result(load(path), options))
        report.files += 1
    return report


def lint_text(
    text: str | bytes,
    path: str = "<string>",
    options: LintOptions | None = None,
    base_dir: str | Path | None = None,
) -> list[Diagnostic]:
    """Lint spec text; returns the findings sorted by position."""
    return lint_result(load_text(text, path, base_dir=base_dir), options or LintOptions())


def lint_result(result: LoadResult, options: LintOptions) -> list[Diagnostic]:
    """Run the selected rules over a load result and filter by options and inline comments."""
    found = list(result.diagnostics)  # FG0xx: never filtered; a broken spec must not pass
    if result.spec is not None and result.document is not None:
        ctx = LintContext(result.path, result.document, result.spec, trace=options.trace)
        found.extend(_run_rules(ctx, options))
        found = _suppress(found, result.document.text)
    return sorted(set(found), key=Diagnostic.sort_key)


def _run_rules(ctx: LintContext, options: LintOptions) -> Iterator[Diagnostic]:
    for rule in all_rules():
        if getattr(rule, "always_on", False) or not options.enabled(
            rule.code, rule.default_enabled
        ):
            continue
        yield from rule.check(ctx)


def _suppress(found: list[Diagnostic], text: str) -> list[Diagnostic]:
    lines = text.splitlines()
    kept = []
    for d in found:
        line = lines[d.line - 1] if 0 < d.line <= len(lines) else ""
        m = _SUPPRESS.search(line) if "freezegen" in line else None
        if m is None or d.code.startswith("FG0"):
            kept.append(d)
            continue
        codes = [c.strip() for c in (m.group(1) or "").split(",") if c.strip()]
        if codes and not any(d.code.startswith(c) for c in codes):
            kept.append(d)
    return kept


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield spec files: those given, and ``*freezegen.yaml`` files under given folders."""
    return _expand(paths, lambda path: SPEC_FILENAME.search(path.as_posix()) is not None)


__all__ = ["ConfigError", "LintReport", "known_codes", "lint_paths", "lint_result", "lint_text"]
