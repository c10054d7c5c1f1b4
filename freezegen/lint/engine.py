"""Run every selected rule over a spec in one pass and apply suppressions."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from freezegen._files import expand_paths as _expand
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.fix import SpecFix
from freezegen.lint.registry import REGISTRY, all_rules
from freezegen.rules import ConfigError, Overrides, RuleOptions, source_lines, suppresses
from freezegen.spec import LoadResult, load, load_text
from freezegen.spec.models import SPEC_FILENAME


@dataclass
class LintReport:
    """Every finding of one ``lint`` run, and how many files were looked at."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    strict: bool = False
    unsafe_fixes: int = 0
    """Findings left whose fix changes the training maths (``lint --fix`` without
    ``--unsafe-fixes`` leaves them)."""

    @property
    def failed(self) -> bool:
        """True when an error (or, with strict, a warning) was found."""
        return any(self.strict or d.severity is Severity.ERROR for d in self.diagnostics)


def lint_paths(paths: Iterable[str | Path], overrides: Overrides | None = None) -> LintReport:
    """Lint spec files (folders are searched for ``*freezegen.yaml``); findings are data.

    Raises ConfigError for malformed selectors or pyproject.toml, FileNotFoundError for a path
    that does not exist.
    """
    overrides = overrides or Overrides()
    REGISTRY.check_overrides(overrides)
    report = LintReport(strict=bool(overrides.strict))
    for path in expand_paths(paths):
        options = REGISTRY.options_for(path, overrides)
        report.strict = report.strict or options.strict
        report.diagnostics.extend(lint_result(load(path), options))
        report.files += 1
    return report


def lint_text(
    text: str | bytes,
    path: str = "<string>",
    options: RuleOptions | None = None,
    base_dir: str | Path | None = None,
) -> list[Diagnostic]:
    """Lint spec text; returns the findings sorted by position."""
    return lint_result(load_text(text, path, base_dir=base_dir), options or RuleOptions())


def lint_result(
    result: LoadResult, options: RuleOptions, *, skip: tuple[str, ...] = ()
) -> list[Diagnostic]:
    """Run the selected rules over a load result and filter by options and inline comments;
    returns the findings sorted by position. Rules whose code starts with a prefix in ``skip``
    do not run (the other commands' gate leaves out the memory rules, see
    :mod:`freezegen.commands.specs`)."""
    return _lint(result, options, skip)[0]


def _lint(
    result: LoadResult, options: RuleOptions, skip: tuple[str, ...] = ()
) -> tuple[list[Diagnostic], dict[Diagnostic, SpecFix]]:
    """:func:`lint_result`'s findings, with the fixes the rules offered for those kept."""
    found = list(result.diagnostics)  # FG0xx: never filtered; a broken spec must not pass
    fixes: dict[Diagnostic, SpecFix] = {}
    if result.spec is not None and result.document is not None:
        ctx = LintContext(result.path, result.document, result.spec, trace=options.trace)
        found.extend(_run_rules(ctx, options, skip))
        found = _suppress(found, result.document.text)
        fixes = {d: f for d, f in ctx.fixes.items() if d in found}
    return sorted(set(found), key=Diagnostic.sort_key), fixes


@dataclass
class FixedFile:
    """One spec file ``lint --fix`` (or ``--diff``) changed: its text before and after, the
    findings fixed, and the fixes that could not be written (finding, why)."""

    path: Path
    before: str
    after: str
    fixed: list[Diagnostic]
    failed: list[tuple[Diagnostic, str]]


def fix_paths(
    paths: Iterable[str | Path],
    overrides: Overrides | None = None,
    *,
    unsafe: bool = False,
    write: bool = True,
) -> tuple[list[FixedFile], LintReport]:
    """Apply the fixes the rules offer to each spec file (``unsafe``: those that change the
    training maths too), writing the files atomically when ``write``; returns what changed and
    the lint report of the files as they are afterwards (as they would be, without ``write``).

    Raises what :func:`lint_paths` raises, and freezegen._io.WriteRefused when a file cannot be
    written (nothing half-written)."""
    from freezegen.lint.fix import fix_text
    from freezegen.spec.edit import SpecFile

    overrides = overrides or Overrides()
    REGISTRY.check_overrides(overrides)
    changed: list[FixedFile] = []
    report = LintReport(strict=bool(overrides.strict))
    for path in expand_paths(paths):
        options = REGISTRY.options_for(path, overrides)
        report.strict = report.strict or options.strict
        report.files += 1
        result = load(path)
        if result.document is None or result.spec is None:
            report.diagnostics.extend(lint_result(result, options))
            continue
        file = SpecFile.read(path)
        text = file.text

        def lint(current: str, path: Path = path, options: RuleOptions = options):
            return _lint(load_text(current, str(path), base_dir=path.parent), options)

        outcome = fix_text(text, lint, unsafe=unsafe)
        final = outcome.text if outcome.text is not None else text
        if outcome.text is not None:
            changed.append(FixedFile(path, text, final, outcome.fixed, outcome.failed))
            if write:
                file.write(final)
        elif outcome.failed:
            changed.append(FixedFile(path, text, text, [], outcome.failed))
        report.diagnostics.extend(outcome.findings)
        report.unsafe_fixes += sum(1 for fix in outcome.fixes.values() if not fix.safe)
    return changed, report


def _run_rules(
    ctx: LintContext, options: RuleOptions, skip: tuple[str, ...]
) -> Iterator[Diagnostic]:
    for rule in all_rules():
        if (
            getattr(rule, "always_on", False)
            or rule.code.startswith(skip)
            or not options.enabled(rule.code, rule.default_enabled)
        ):
            continue
        yield from rule.check(ctx)


def _suppress(found: list[Diagnostic], text: str) -> list[Diagnostic]:
    """Drop findings silenced by a comment on their line; FG0xx cannot be silenced."""
    lines = source_lines(text, "yaml")
    return [
        d
        for d in found
        if d.code.startswith("FG0")
        or not suppresses(lines[d.line - 1] if 0 < d.line <= len(lines) else "", d.code)
    ]


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield spec files: those given, and ``*freezegen.yaml`` files under given folders."""
    return _expand(paths, lambda path: SPEC_FILENAME.search(path.as_posix()) is not None)


__all__ = [
    "ConfigError",
    "FixedFile",
    "LintReport",
    "fix_paths",
    "lint_paths",
    "lint_result",
    "lint_text",
]
