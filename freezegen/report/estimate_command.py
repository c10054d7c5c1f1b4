"""What ``freezegen estimate`` does, apart from option parsing: load, sweep, estimate, explain,
render, plot. The CLI calls :func:`run_estimate` and prints what it returns; a user's mistake is
an :class:`EstimateUsageError` (exit 2) with a message that says where it is.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freezegen.memory.estimate import MemoryEstimate

__all__ = ["EstimateOutput", "EstimateUsageError", "run_estimate"]


class EstimateUsageError(Exception):
    """Bad input to ``freezegen estimate``; ``text`` is printed as is (exit 2)."""

    def __init__(self, text: str, *, prefixed: bool = True) -> None:
        super().__init__(text)
        self.text = text
        self.prefixed = prefixed  # False: already formatted diagnostics


@dataclass
class EstimateOutput:
    stdout: str = ""
    notes: list[str] = field(default_factory=list)  # for stderr ("wrote plot.png")


def run_estimate(
    path: Path,
    *,
    trace: bool = False,
    format: str = "table",
    sweeps: list[str] | None = None,
    explain: bool = False,
    plot: Path | None = None,
    color: bool = False,
) -> EstimateOutput:
    """Run the estimate command; raise :class:`EstimateUsageError` for any user mistake."""
    from freezegen.memory import EstimateError
    from freezegen.memory import estimate as estimate_memory
    from freezegen.memory.sweep import SweepError, expand, parse_sweep

    if format not in ("table", "json"):
        raise EstimateUsageError(f"unknown --format {format!r}; choose table or json")
    if explain and trace:
        raise EstimateUsageError(
            "--explain writes out the analytic model's formulas; it does not combine with "
            "--trace (run them separately to compare)"
        )
    if plot is not None:
        _check_plot(plot)
    if not path.exists():
        raise EstimateUsageError(f"no such file: {path}")
    loaded = _load(path)
    method = "traced" if trace else "analytic"

    if sweeps:
        try:
            parsed = [parse_sweep(arg) for arg in sweeps]
            points = expand(loaded.document.data, parsed, base_dir=path.parent)
        except SweepError as exc:
            raise EstimateUsageError(exc.render()) from None
        specs = [(p.label if len(parsed) > 1 else p.labels[parsed[0].name], p) for p in points]
    else:
        parsed, specs = [], [(path.stem.removesuffix(".freezegen"), None)]

    rows: list[tuple[str, MemoryEstimate]] = []
    explanations = []
    for label, point in specs:
        spec = loaded.spec if point is None else point.spec
        try:
            if explain:
                from freezegen.memory.explain import explain as explain_spec

                explanation = explain_spec(spec)
                explanations.append(explanation)
                result = explanation.estimate
            else:
                result = estimate_memory(spec, method)
        except EstimateError as exc:
            where = f" at {point.label}" if point is not None else ""
            raise EstimateUsageError(f"{path}{where}: {exc}") from None
        rows.append((label, result))

    out = EstimateOutput(_render(path, rows, parsed, specs, explanations, format, color))
    if plot is not None:
        from freezegen.report.estimate_plot import PlotError, plot_estimates

        xlabel = parsed[0].name if len(parsed) == 1 else ""
        try:
            plot_estimates(rows, plot, title=str(path), xlabel=xlabel)
        except PlotError as exc:
            raise EstimateUsageError(str(exc)) from None
        except OSError as exc:
            raise EstimateUsageError(f"cannot write {plot}: {exc.strerror or exc}") from None
        out.notes.append(f"wrote {plot}")
    return out


def _check_plot(plot: Path) -> None:
    from freezegen.report.estimate_plot import FORMATS

    if plot.suffix.lower().lstrip(".") not in FORMATS:
        raise EstimateUsageError(f"--plot writes .svg or .png files, not {plot.name!r}")
    if importlib.util.find_spec("matplotlib") is None:
        raise EstimateUsageError(
            "--plot needs matplotlib: pip install 'freezegen[plot]' (or pip install matplotlib)"
        )


def _load(path: Path) -> Any:
    from freezegen.report import render
    from freezegen.spec import load

    result = load(path)
    if result.spec is None:
        raise EstimateUsageError(
            render("text", result.diagnostics, files=1).rstrip("\n"), prefixed=False
        )
    return result


def _render(
    path: Path,
    rows: list[tuple[str, MemoryEstimate]],
    parsed: list[Any],
    specs: list[tuple[str, Any]],
    explanations: list[Any],
    format: str,
    color: bool,
) -> str:
    from freezegen.report.estimate_explain import explanation_json, render_explanation

    if format == "json":
        items = []
        for i, ((_, est), (_, point)) in enumerate(zip(rows, specs, strict=True)):
            item = est.to_json_dict()
            if point is not None:
                item["sweep"] = point.values
            if explanations:
                item["explain"] = explanation_json(explanations[i])
            items.append(item)
        data: Any = items if parsed else items[0]
        return json.dumps(data, indent=2) + "\n"
    if parsed:
        from freezegen.report.estimate_sweep import render_sweep

        key = ", ".join(sw.name for sw in parsed)
        text = render_sweep(rows, str(path), key, color=color)
    else:
        from freezegen.report.estimate_table import render_estimate

        text = render_estimate(rows[0][1], str(path), color=color)
    for (label, _), explanation in zip(rows, explanations, strict=False):
        title = f"{path} [{label}]" if parsed else str(path)
        text += "\n" + render_explanation(explanation, title)
    return text
