"""``freezegen estimate``: load the spec, expand sweeps, estimate (or explain) each point,
render the table or JSON, and plot. A user's mistake is a UsageError that says where it is."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors
from freezegen.commands.specs import check_point, load_or_report

if TYPE_CHECKING:
    from freezegen.memory.estimate import MemoryEstimate
    from freezegen.memory.explain import Explanation
    from freezegen.memory.sweep import Sweep, SweepError, SweepPoint
    from freezegen.spec.models import Spec


@dataclass(frozen=True)
class Options:
    """``sweeps``: ``KEY=V1,V2`` arguments, one row per value (several make a grid).
    ``plot``: an .svg or .png file for stacked bars. ``color``: the terminal takes ANSI colours
    (table format only)."""

    spec: Path
    trace: bool = False
    format: str = "table"
    sweeps: tuple[str, ...] = ()
    explain: bool = False
    plot: Path | None = None
    color: bool = False
    gpus: tuple[str, ...] = ()
    """``--gpu A10G,L4,...``: one row per card (the spec's hardware section with that GPU in
    place of its own), to answer which card a run needs."""


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Estimate the spec (each sweep point); exit status 0, or 2 for a usage error (bad
    option, missing file, a spec or sweep that does not validate, a model the chosen estimator
    cannot handle, a plot that cannot be written)."""
    from freezegen.memory import EstimateError
    from freezegen.memory import estimate as estimate_memory
    from freezegen.memory.explain import explain
    from freezegen.memory.sweep import SweepError, expand, parse_sweep

    path, plot = options.spec, options.plot
    if options.format not in ("table", "json"):
        raise UsageError(f"unknown --format {options.format!r}; choose table or json")
    if options.explain and options.trace:
        raise UsageError(
            "--explain writes out the analytic model's formulas; it does not combine with "
            "--trace (run them separately to compare)"
        )
    if plot is not None:
        _check_plot(plot, path)
    # a symlink that leads nowhere (a loop) is the reader's to explain, with its reason
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"no such file: {path}")
    loaded = load_or_report(path)

    sweeps: list[Sweep] = []
    points: list[tuple[str, SweepPoint | None]] = [(path.stem.removesuffix(".freezegen"), None)]
    data = loaded.document.data
    if options.gpus:
        data = _on_each_gpu(data)
    arguments = [
        *options.sweeps,
        *([f"hardware.gpu={','.join(options.gpus)}"] if options.gpus else []),
    ]
    if arguments:
        try:
            sweeps = [parse_sweep(arg) for arg in arguments]
            expanded = expand(data, sweeps, base_dir=path.parent)
        except SweepError as exc:
            raise UsageError(_render_error(exc, options.gpus)) from None
        # one swept key labels its rows by value alone; a grid needs every key=value
        points = [(p.label if len(sweeps) > 1 else p.labels[sweeps[0].name], p) for p in expanded]
        for point in expanded:
            check_point(path, loaded, point.spec, f"at {point.label}")

    result = CommandResult()
    rows: list[tuple[str, MemoryEstimate]] = []
    explanations: list[Explanation] = []
    method = "traced" if options.trace else "analytic"
    unknown = None if options.trace or options.explain else _unknown_architecture(loaded.spec)
    if unknown is not None:
        method = "traced"
        result.err(f"note: {unknown}; estimating with the trace (--trace)")
    for label, point in points:
        spec = loaded.spec if point is None else point.spec
        try:
            if options.explain:
                explanations.append(explain(spec))
                estimate = explanations[-1].estimate
            else:
                estimate = estimate_memory(spec, method)
        except EstimateError as exc:
            where = f" at {point.label}" if point is not None else ""
            raise UsageError(f"{path}{where}: {exc}") from None
        rows.append((label, estimate))

    values = [p.values for _, p in points if p is not None] if sweeps else None
    result.out(_render(options, rows, sweeps, values, explanations))
    if plot is not None:
        _plot(plot, rows, path, sweeps)
        result.written.append(plot)
        result.err(f"wrote {plot}")
    return result


def _render_error(exc: SweepError, gpus: tuple[str, ...]) -> str:
    """A sweep error as the user wrote the option: ``--gpu`` is a sweep of hardware.gpu."""
    prefix = "hardware.gpu="
    if not gpus or exc.arg != prefix + ",".join(gpus):
        return exc.render()
    names = exc.arg[len(prefix) :]
    start = max(exc.start - len(prefix), 0)
    width = max(exc.end - exc.start, 1)
    return f"--gpu {names}: {exc.message}\n  {names}\n  {' ' * start}{'^' * width}"


def _on_each_gpu(data: dict) -> dict:
    """The spec's data ready for a sweep over ``hardware.gpu``: its hardware section keeps the
    GPU count and reserve, less a memory size or bf16 flag that described another card."""
    import copy

    data = copy.deepcopy(data)
    hardware = data.get("hardware") if isinstance(data.get("hardware"), dict) else {}
    data["hardware"] = {k: v for k, v in hardware.items() if k not in ("memory_gib", "bf16")}
    return data


def _check_plot(plot: Path, spec: Path) -> None:
    """Raise UsageError before any work when ``plot`` cannot be written."""
    from freezegen._io import WriteRefused, check_target
    from freezegen.report.estimate_plot import FORMATS

    if str(plot) == "-":  # a PNG is binary and an SVG a page of XML: neither suits a terminal
        raise UsageError("--plot writes a file (FILE.svg or FILE.png), not standard output")
    if plot.suffix.lower().lstrip(".") not in FORMATS:
        raise UsageError(f"--plot writes .svg or .png files, not {plot.name!r}")
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError(
            "--plot needs matplotlib: pip install 'freezegen[plot]' (or pip install matplotlib)"
        )
    try:
        check_target(plot, [spec])
    except WriteRefused as exc:
        raise UsageError(str(exc)) from None


def _render(
    options: Options,
    rows: list[tuple[str, MemoryEstimate]],
    sweeps: list[Sweep],
    sweep_values: list[dict[str, object]] | None,
    explanations: list[Explanation],
) -> str:
    """The rows as JSON, or as a table (a sweep table for sweeps), each explanation after."""
    from freezegen.report.estimate_explain import render_explanation

    path = options.spec
    if options.format == "json":
        from freezegen.report.estimate_json import render_estimates_json

        return render_estimates_json([est for _, est in rows], sweep_values, explanations)
    if sweeps:
        from freezegen.report.estimate_sweep import render_sweep

        key = ", ".join(sw.name for sw in sweeps)
        text = render_sweep(rows, str(path), key, color=options.color)
    else:
        from freezegen.report.estimate_table import render_estimate

        text = render_estimate(rows[0][1], str(path), color=options.color)
    for (label, _), explanation in zip(rows, explanations, strict=False):
        title = f"{path} [{label}]" if sweeps else str(path)
        text += "\n" + render_explanation(explanation, title)
    return text


def _plot(
    plot: Path, rows: list[tuple[str, MemoryEstimate]], spec: Path, sweeps: list[Sweep]
) -> None:
    """Write the stacked-bar plot; raises UsageError when it cannot be drawn or written."""
    from freezegen._io import WriteRefused
    from freezegen.report.estimate_plot import PlotError, plot_estimates

    xlabel = sweeps[0].name if len(sweeps) == 1 else ""
    try:
        plot_estimates(rows, plot, title=str(spec), xlabel=xlabel, inputs=[spec])
    except (PlotError, WriteRefused) as exc:
        raise UsageError(str(exc)) from None


def _unknown_architecture(spec: Spec) -> str | None:
    """Why the analytic model cannot describe the spec's Hugging Face model (a model_type no
    family knows: the trace measures it instead); None when it can, or when the model is not
    of that kind (a factory, an unreadable config: the estimate reports those)."""
    from freezegen.arch import ArchitectureError, UnknownArchitecture, architecture_for

    try:
        architecture_for(spec.model)
    except UnknownArchitecture as exc:
        return str(exc)
    except ArchitectureError:
        return None
    return None
