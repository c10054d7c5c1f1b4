"""``freezegen lint``: check specs for schema errors and inconsistencies."""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.commands.findings import FindingsOptions, overrides, report_findings
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.rules import ConfigError


@dataclass(frozen=True)
class Options(FindingsOptions):
    """``trace`` None: the config file decides whether memory rules trace."""

    trace: bool | None = None


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Lint the specs; exit status 1 when the findings fail the run, 2 for a usage error
    (unknown --format or selector, malformed pyproject.toml, missing path).

    Folders holding no spec file pass with a warning on stderr, as ruff's "No Python files
    found" does (pre-commit runs the hook only when a file matches; a CI path that matches
    nothing is worth a warning, not a failed build), and the text format claims no passed
    checks.
    """
    from freezegen.lint import lint_paths

    wanted = overrides(options, trace=options.trace)
    try:
        report = lint_paths(options.paths, wanted)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from None
    result = CommandResult()
    if report.files == 0:
        shown = ", ".join(str(path) for path in options.paths)
        result.err(
            f"freezegen: warning: no spec files (*freezegen.yaml, *freezegen.yml) found in {shown}"
        )
        if options.format == "text":
            return result
    return report_findings(result, options, report.diagnostics, report.files, report.failed, "lint")
