"""``freezegen report``'s figures: a run's loss, throughput and memory against the step.

Each figure is drawn only from what the run recorded; a figure with nothing to draw is left
out and :class:`RunFigures` says why in a sentence the page shows in its place (memory on the
CPU, a run that has not evaluated yet), so nothing goes missing silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from freezegen.report.figures import figure_bytes, new_figure
from freezegen.runlog import RunLog
from freezegen.spec.presets import GIB, MIB

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "RunFigures", "draw_run", "memory_unit", "not_measured"]

# name -> title, in the order the page shows them
FIGURES = {
    "loss": "Training and validation loss",
    "throughput": "Throughput",
    "memory": "Memory: measured against predicted",
}
_WHAT = "freezegen report"
_SIZE = {"figsize": (8.0, 4.2), "dpi": 110, "layout": "constrained"}


@dataclass
class RunFigures:
    """``files``: figure name -> the file's bytes in the chosen format, for each figure drawn.
    ``missing``: figure name -> why it was not drawn."""

    format: str
    files: dict[str, bytes] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)


def not_measured(log: RunLog) -> str:
    """Why a CUDA-only value is null: the run was on the CPU, or its device did not say."""
    devices = {run.device for run in log.runs}
    if devices and devices <= {"cpu"}:
        return "not measured on the CPU (the allocator's figures are CUDA's)"
    return "not measured (the run recorded no allocator figures)"


def memory_unit(peak: float) -> tuple[str, int]:
    """The unit for memory figures up to ``peak`` bytes: GiB from 1 GiB up, MiB below."""
    return ("GiB", GIB) if peak >= GIB else ("MiB", MIB)


def draw_run(log: RunLog, fmt: str) -> RunFigures:
    """The figures of ``log`` as ``fmt`` (svg or png) bytes, and why any is missing.

    Raises PlotError (freezegen.report.figures) when matplotlib is missing.
    """
    figures = RunFigures(fmt)
    drawers = {"loss": _loss, "throughput": _throughput, "memory": _memory}
    for name, draw in drawers.items():
        made = draw(log)
        if isinstance(made, str):
            figures.missing[name] = made
        else:
            made.suptitle(FIGURES[name], fontsize=11)
            figures.files[name] = figure_bytes(made, fmt)
    return figures


def _loss(log: RunLog) -> Figure | str:
    if not log.train and not log.evals:
        return "no training step or evaluation recorded yet"
    figure = new_figure(_WHAT, **_SIZE)
    ax = figure.add_subplot()
    if log.train:
        ax.plot([r.step for r in log.train], [r.loss for r in log.train], label="training loss")
    if log.evals:
        ax.plot(
            [r.step for r in log.evals],
            [r.val_loss for r in log.evals],
            marker="o",
            markersize=4,
            label="validation loss",
        )
    best = log.best_eval
    if best is not None:
        ax.annotate(
            f"best {best.val_loss:.4g} at step {best.step}",
            (best.step, best.val_loss),
            xytext=(0, -14),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    _mark_events(ax, log)
    ax.set_ylabel("loss")
    _finish_axes(ax)
    return figure


def _throughput(log: RunLog) -> Figure | str:
    if not log.train:
        return "no training step recorded yet"
    figure = new_figure(_WHAT, **_SIZE)
    ax = figure.add_subplot()
    ax.plot([r.step for r in log.train], [r.tokens_per_s for r in log.train], label="tokens/s")
    _mark_events(ax, log)
    ax.set_ylabel("tokens / s")
    ax.set_ylim(bottom=0)
    _finish_axes(ax)
    return figure


def _memory(log: RunLog) -> Figure | str:
    allocated = [(r.step, r.max_allocated_bytes) for r in log.train if r.max_allocated_bytes]
    reserved = [(r.step, r.reserved_bytes) for r in log.train if r.reserved_bytes]
    if not allocated and not reserved:
        return not_measured(log)
    predicted = {r.predicted_peak_bytes for r in log.runs if r.predicted_peak_bytes}
    predicted |= {r.predicted_peak_bytes for r in log.memory if r.predicted_peak_bytes}
    peak = max([b for _, b in allocated + reserved] + list(predicted))
    unit, scale = memory_unit(peak)
    figure = new_figure(_WHAT, **_SIZE)
    ax = figure.add_subplot()
    for points, label in ((allocated, "max allocated"), (reserved, "reserved")):
        if points:
            ax.plot([s for s, _ in points], [b / scale for _, b in points], label=label)
    for value in sorted(predicted):
        ax.axhline(value / scale, color="black", linestyle="--", linewidth=1.2)
        ax.annotate(
            f"predicted peak {value / scale:,.1f} {unit}",
            (0.0, value / scale),
            xycoords=("axes fraction", "data"),
            xytext=(4, 3),
            textcoords="offset points",
            fontsize=8,
        )
    _mark_events(ax, log)
    ax.set_ylabel(unit)
    ax.set_ylim(0, peak / scale * 1.15)
    _finish_axes(ax)
    return figure


def _mark_events(ax: Axes, log: RunLog) -> None:
    """Vertical lines where blocks were thawed and where the run was resumed."""
    for i, thaw in enumerate(log.thaws):
        ax.axvline(
            thaw.step,
            color="#55a868",
            linestyle="--",
            linewidth=1,
            label="thaw" if i == 0 else None,
        )
    for i, run in enumerate(log.resumes):
        label = "resumed" if i == 0 else None
        ax.axvline(run.step, color="#8c8c8c", linestyle=":", linewidth=1, label=label)


def _finish_axes(ax: Axes) -> None:
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8)
