"""``freezegen schema``: print or write the JSON Schema of the spec format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.outputs import STDOUT, write_or_check
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors


@dataclass(frozen=True)
class Options:
    """``output`` None or ``-``: the schema goes to stdout. ``check`` (needs a file): compare
    only."""

    output: Path | None = None
    check: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Render the schema; exit status 1 when ``check`` finds the file out of date, 2 when
    ``check`` has no file to compare or the output may not be written."""
    from freezegen.spec.schema import render_schema

    text = render_schema()
    if options.output is None and options.check:
        raise UsageError("--check needs -o FILE")
    rerun = f"freezegen schema -o {options.output}"
    return write_or_check(text, options.output or STDOUT, check=options.check, rerun=rerun)
