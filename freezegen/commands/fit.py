"""``freezegen fit``: find the largest value of a key whose run fits, print what was tried, and
write the winner into the spec as ``lint --fix`` does (comments and layout kept)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.commands.specs import load_or_report


@dataclass(frozen=True)
class Options:
    """``maximize``: dotted keys, searched in order; ``keep``: keys no knob may change;
    ``gpu``: fit this card instead of the spec's; ``headroom``: share of the budget left spare;
    ``diff``: print the change instead of writing it."""

    spec: Path
    maximize: tuple[str, ...]
    keep: tuple[str, ...] = ()
    gpu: str | None = None
    headroom: float = 0.10
    multiple_of: int = 1
    diff: bool = False
    color: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Search, report and write; exit status 0 when every key found a value that fits, 1 when
    one did not (nothing written), 2 for a usage error."""
    from freezegen._diff import unified
    from freezegen._io import ReadRefused, TooLarge, WriteRefused
    from freezegen.memory.fit import FitError, fit
    from freezegen.report.fit_table import render_trials
    from freezegen.spec.edit import EditError, SpecFile, apply_edits, edits_between

    path = options.spec
    if not options.maximize:
        raise UsageError("give a key to maximize, e.g. --maximize batch.micro_batch_size")
    if options.multiple_of < 1:
        raise UsageError(f"--multiple-of {options.multiple_of}: give a whole number from 1")
    if not 0 <= options.headroom < 1:
        raise UsageError(f"--headroom {options.headroom}: give a share of the budget, 0 to 0.99")
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"no such file: {path}")
    loaded = load_or_report(path)
    spec, hardware_edits = loaded.spec, []
    if options.gpu is not None:
        spec, hardware_edits = _on_gpu(loaded, options.gpu, path)
    try:
        found = fit(spec, options.maximize, options.keep, options.headroom, options.multiple_of)
    except FitError as exc:
        raise UsageError(f"{path}: {exc}") from None

    result = CommandResult()
    result.out(
        render_trials(found.trials, f"{path}: values tried", options.headroom, color=options.color)
    )
    missing = [k for k, v in found.best.items() if v is None]
    if missing or found.fix is None:
        result.err(
            f"{path}: no value of {', '.join(missing or options.maximize)} fits "
            f"{_budget(spec)} with {options.headroom:.0%} spare, even with every knob that "
            "keeps the maths; freeze more, use bf16, or a bigger GPU (freezegen lint --fix "
            "--unsafe-fixes suggests one)"
        )
        result.exit_code = 1
        return result
    edits = (*hardware_edits, *edits_between(loaded.spec, found.fix.spec))
    edits = tuple(e for e in edits if not _is_hardware(e) or e in hardware_edits)
    summary = ", ".join(f"{k} = {v}" for k, v in found.best.items())
    knobs = f" with {found.fix.change}" if found.fix.change else ""
    est = found.fix.estimate
    result.err(
        f"{summary}{knobs}: peak {est.peak_bytes / 2**30:.2f} GiB, "
        f"{(est.headroom_bytes or 0) / 2**30:.2f} GiB spare of {_budget(spec)}"
    )
    if not edits:
        result.err("the spec already holds these values; nothing to write")
        return result
    try:
        file = SpecFile.read(path)
        new = apply_edits(file.text, edits)
    except (ReadRefused, TooLarge, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it again to write the result: {exc}") from None
    except EditError as exc:
        raise UsageError(
            f"{path}: the result cannot be written faithfully ({exc}); set "
            + "; ".join(str(e) for e in edits)
            + " yourself"
        ) from None
    if options.diff:
        result.out(unified(file.text, new, str(path)))
        return result
    try:
        file.write(new)
    except WriteRefused as exc:
        raise UsageError(str(exc)) from None
    result.written.append(path)
    result.err(f"wrote {path}: " + "; ".join(str(e) for e in edits))
    return result


def _on_gpu(loaded, gpu: str, path: Path):
    """The spec on ``gpu``, and the edit that writes that card into the spec's hardware."""
    from pydantic import ValidationError

    from freezegen.spec.edit import Edit
    from freezegen.spec.models import Spec

    data = copy.deepcopy(loaded.document.data)
    hardware = data.get("hardware") if isinstance(data.get("hardware"), dict) else {}
    if "memory_gib" in hardware:
        raise UsageError(
            f"{path}: --gpu {gpu} would replace hardware.memory_gib, which fit cannot remove "
            "from the file; write hardware: {gpu: " + gpu + "} first, or fit without --gpu"
        )
    data["hardware"] = {**hardware, "gpu": gpu}
    try:
        spec = Spec.model_validate(data, context={"base_dir": path.parent})
    except ValidationError as exc:
        raise UsageError(f"--gpu {gpu}: {exc.errors()[0]['msg']}") from None
    return spec, [Edit(("hardware", "gpu"), gpu)]


def _is_hardware(edit) -> bool:
    return edit.loc[:1] == ("hardware",)


def _budget(spec) -> str:
    hw = spec.hardware
    return f"the {hw.gpu}" if hw is not None and hw.gpu else "the budget"
