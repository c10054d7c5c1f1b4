"""``freezegen generate``: render the training script of a spec, or check the one on disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.outputs import STDOUT, write_or_check
from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.commands.specs import load_or_report


@dataclass(frozen=True)
class Options:
    """``output`` None or ``-``: the script goes to stdout. ``check`` (needs a file): compare
    only."""

    spec: Path
    output: Path | None = None
    check: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Render the script; exit status 1 when ``check`` finds the file out of date, 2 for a
    usage error (missing spec, a spec that does not load or cannot be generated, an output
    that may not be written: a folder, a device, a read-only file, the spec or its model's
    config.json)."""
    from freezegen.arch.source import model_config_file
    from freezegen.generate import GenerateError, render_script

    spec, output = options.spec, options.output
    if options.check and output is None:
        raise UsageError("--check needs -o FILE")
    # a symlink that leads nowhere (a loop) is the reader's to explain, with its reason
    if not spec.exists() and not spec.is_symlink():
        raise UsageError(f"no such file: {spec}")
    result = load_or_report(spec)
    loaded = result.spec
    assert loaded is not None  # load_or_report raises otherwise
    target = output or STDOUT
    try:
        text = render_script(loaded, spec, None if target == STDOUT else target.parent)
    except GenerateError as exc:
        where = spec
        if exc.loc and result.document is not None:  # the setting to blame, as lint locates it
            line, col = result.document.locate(exc.loc, key=True)
            where = f"{spec}:{line}:{col}"
        raise UsageError(f"{where}: {exc}") from None
    # the model's local config.json is read too, now and by the script at its start
    inputs = [spec] if loaded.model.hf_config is None else [spec, model_config_file(loaded.model)]
    rerun = f"freezegen generate {spec} -o {output}"
    return write_or_check(text, target, check=options.check, rerun=rerun, inputs=inputs)
