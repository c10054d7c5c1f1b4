"""What ``lint`` and ``check`` share: selection options, --format, and printing findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.result import CommandResult, UsageError
from freezegen.diagnostics import Diagnostic
from freezegen.rules import Overrides


@dataclass(frozen=True)
class FindingsOptions:
    """The paths and the options lint and check share (same names, same [tool.freezegen]).

    ``select`` None means "not given": the config file decides. ``color``: the caller's
    terminal takes ANSI colours (text format only).
    """

    paths: tuple[Path, ...]
    format: str = "text"
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    strict: bool | None = None
    use_config: bool = True
    color: bool = False


def overrides(options: FindingsOptions, **extra: bool | None) -> Overrides:
    """The rule Overrides the options stand for; raises UsageError for an unknown --format."""
    from freezegen.report import FORMATS

    if options.format not in FORMATS:
        raise UsageError(f"unknown --format {options.format!r}; choose one of {', '.join(FORMATS)}")
    return Overrides(
        select=options.select,
        ignore=options.ignore,
        strict=options.strict,
        use_config=options.use_config,
        **extra,
    )


def report_findings(
    result: CommandResult,
    options: FindingsOptions,
    diagnostics: Sequence[Diagnostic],
    files: int,
    failed: bool,
    tool: str,
) -> CommandResult:
    """Add the rendered findings to ``result``; exit status 1 when they fail the run."""
    from freezegen.report import render

    color = options.color and options.format == "text"
    result.out(render(options.format, diagnostics, files=files, color=color, tool=tool))
    result.exit_code = 1 if failed else 0
    return result
