"""``freezegen lint``: check specs for schema errors and inconsistencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from freezegen.commands.findings import FindingsOptions, overrides, report_findings
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.rules import ConfigError

if TYPE_CHECKING:
    from freezegen.lint.engine import FixedFile, LintReport


@dataclass(frozen=True)
class Options(FindingsOptions):
    """``trace`` None: the config file decides whether memory rules trace. ``fix``: write the
    fixes the rules offer into the specs (``unsafe_fixes``: those that change the training maths
    too); ``diff``: print them as a diff instead of writing."""

    trace: bool | None = None
    fix: bool = False
    unsafe_fixes: bool = False
    diff: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Lint the specs; exit status 1 when the findings fail the run, 2 for a usage error
    (unknown --format or selector, malformed pyproject.toml, missing path).

    Folders holding no spec file pass with a warning on stderr, as ruff's "No Python files
    found" does (pre-commit runs the hook only when a file matches; a CI path that matches
    nothing is worth a warning, not a failed build), and the text format claims no passed
    checks.
    """
    from freezegen._io import ReadRefused, TooLarge, WriteRefused
    from freezegen.lint import lint_paths
    from freezegen.lint.engine import fix_paths

    if options.unsafe_fixes and not (options.fix or options.diff):
        raise UsageError("--unsafe-fixes applies fixes, so it needs --fix or --diff")
    wanted = overrides(options, trace=options.trace)
    result = CommandResult()
    try:
        if options.fix or options.diff:
            changed, report = fix_paths(
                options.paths, wanted, unsafe=options.unsafe_fixes, write=not options.diff
            )
        else:
            changed, report = [], lint_paths(options.paths, wanted)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from None
    except (ReadRefused, TooLarge, WriteRefused) as exc:
        raise UsageError(str(exc)) from None
    for fixed in changed:
        for finding, why in fixed.failed:
            result.err(
                f"{finding.path}:{finding.line}:{finding.col}: {finding.code} not fixed: {why}"
            )
    if not options.unsafe_fixes:
        _hidden(result, report)
    if options.diff:
        return _diff(result, changed)
    if options.fix:
        count = sum(len(f.fixed) for f in changed)
        files = sum(1 for f in changed if f.fixed)
        if count:
            result.err(f"Fixed {count} finding(s) in {files} file(s).")
            result.written.extend(f.path for f in changed if f.fixed)
    if report.files == 0:
        shown = ", ".join(str(path) for path in options.paths)
        result.err(
            f"freezegen: warning: no spec files (*freezegen.yaml, *freezegen.yml) found in {shown}"
        )
        if options.format == "text":
            return result
    return report_findings(result, options, report.diagnostics, report.files, report.failed, "lint")


def _diff(result: CommandResult, changed: list[FixedFile]) -> CommandResult:
    """``--diff``: the fixes as a unified diff on stdout, nothing written; exit status 1 when
    there is one (as ruff's --diff)."""
    from freezegen._diff import unified

    for fixed in changed:
        result.out(unified(fixed.before, fixed.after, str(fixed.path)))
    result.exit_code = 1 if any(f.after != f.before for f in changed) else 0
    if result.exit_code == 0:
        result.err("No fixes available.")
    return result


def _hidden(result: CommandResult, report: LintReport) -> None:
    """Say how many findings have a fix that only --unsafe-fixes applies (as ruff does)."""
    hidden = report.unsafe_fixes
    if hidden:
        result.err(
            f"{hidden} fix(es) that change the training maths are available with "
            "--unsafe-fixes (see each finding's help line)."
        )
