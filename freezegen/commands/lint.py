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
    (unknown --format or selector, malformed pyproject.toml, missing path)."""
    from freezegen.lint import lint_paths

    wanted = overrides(options, trace=options.trace)
    try:
        report = lint_paths(options.paths, wanted)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from None
    return report_findings(
        CommandResult(), options, report.diagnostics, report.files, report.failed, "lint"
    )
