"""``freezegen check``: find AMP, accumulation and checkpointing mistakes in training scripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.findings import FindingsOptions, overrides, report_findings
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.rules import ConfigError


@dataclass(frozen=True)
class Options(FindingsOptions):
    """``fix``: apply the safe fixes in place; ``unsafe_fixes`` (with ``fix``): the unsafe ones
    too; ``jobs``: check files in that many processes."""

    fix: bool = False
    unsafe_fixes: bool = False
    jobs: int = 1


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Check the scripts (fixing them with ``fix``); exit status 1 when the findings left fail
    the run, 2 for a usage error (unknown --format or selector, -j below 1, --unsafe-fixes
    without --fix, malformed pyproject.toml, missing path)."""
    from freezegen.check import check_paths

    wanted = overrides(options)
    if options.jobs < 1:
        raise UsageError(f"-j must be at least 1, not {options.jobs}")
    if options.unsafe_fixes and not options.fix:
        raise UsageError("--unsafe-fixes applies fixes, so it needs --fix")
    try:
        checked = check_paths(
            options.paths,
            wanted,
            fix=options.fix,
            unsafe_fixes=options.unsafe_fixes,
            jobs=options.jobs,
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from None
    result = CommandResult()
    result.written.extend(Path(path) for path in checked.fixed_paths)
    if checked.fixes:
        result.err(f"Fixed {checked.fixes} finding(s) in {len(checked.fixed_paths)} file(s).")
    return report_findings(
        result, options, checked.diagnostics, checked.files, checked.failed, "check"
    )
