"""``freezegen generate``: render the training script of a spec, or check the one on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.outputs import write_or_check
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.commands.specs import load_or_report


@dataclass(frozen=True)
class Options:
    """``output`` None: the script goes to stdout. ``check`` (needs ``output``): compare only."""

    spec: Path
    output: Path | None = None
    check: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Render the script; exit status 1 when ``check`` finds the file out of date, 2 for a
    usage error (missing spec, a spec that does not load or cannot be generated)."""
    from freezegen.generate import GenerateError, render_script

    spec, output = options.spec, options.output
    if options.check and output is None:
        raise UsageError("--check needs -o FILE")
    if not spec.exists():
        raise UsageError(f"no such file: {spec}")
    loaded = load_or_report(spec).spec
    assert loaded is not None  # load_or_report raises otherwise
    try:
        text = render_script(loaded, spec, output.parent if output is not None else None)
    except GenerateError as exc:
        raise UsageError(f"{spec}: {exc}") from None
    if output is None:
        result = CommandResult()
        result.out(text)
        return result
    rerun = f"freezegen generate {spec} -o {output}"
    return write_or_check(text, output, check=options.check, rerun=rerun)
