"""``freezegen schema``: print or write the JSON Schema of the spec format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.outputs import write_or_check
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors


@dataclass(frozen=True)
class Options:
    """``output`` None: the schema goes to stdout. ``check`` (needs ``output``): compare only."""

    output: Path | None = None
    check: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Render the schema; exit status 1 when ``check`` finds the file out of date, 2 when
    ``check`` has no file to compare."""
    from freezegen.spec.schema import render_schema

    text = render_schema()
    if options.output is None:
        if options.check:
            raise UsageError("--check needs -o FILE")
        result = CommandResult()
        result.out(text)
        return result
    rerun = f"freezegen schema -o {options.output}"
    return write_or_check(text, options.output, check=options.check, rerun=rerun)
