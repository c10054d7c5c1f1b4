"""``--plot FILE.svg|png``: stacked bars of the estimate's terms per sweep point, budget line.

matplotlib is optional (``pip install 'freezegen[plot]'``): freezegen.report.figures imports it
when a plot is asked for. The figure is rendered in memory and written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from freezegen._io import write_file
from freezegen.memory.estimate import MemoryEstimate
from freezegen.report.figures import FORMATS, PlotError, figure_bytes, new_figure
from freezegen.spec.presets import GIB

__all__ = ["FORMATS", "PlotError", "plot_estimates"]

# Bottom to top in breakdown order, then the overhead (hatched: the allocator never sees it).
_TERMS = (
    ("parameters", "parameters", "#4c72b0"),
    ("gradients", "gradients", "#dd8452"),
    ("optimizer_states", "optimizer states", "#55a868"),
    ("activations", "activations", "#c44e52"),
    ("temporaries", "temporaries", "#8172b3"),
)
_OVERHEAD = "#bbbbbb"


def plot_estimates(
    rows: Sequence[tuple[str, MemoryEstimate]],
    path: str | Path,
    *,
    title: str,
    xlabel: str = "",
    inputs: Sequence[str | Path] = (),
) -> None:
    """Draw one stacked bar per ``(label, estimate)`` with the budget line; write ``path``.

    Raises PlotError (no matplotlib, another file type) and WriteRefused (freezegen._io) when
    ``path`` may not be written: a folder, a device, a read-only file, one of ``inputs``.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"--plot writes .svg or .png files, not {path.name!r}")
    labels = [label for label, _ in rows]
    n = len(rows)
    fig = new_figure(
        "--plot", figsize=(max(7.5, 1.1 * n + 5.5), 5.0), dpi=120, layout="constrained"
    )
    ax = fig.add_subplot()
    xs = list(range(n))
    bottoms = [0.0] * n
    width = 0.6
    for field, name, colour in _TERMS:
        heights = [getattr(est.breakdown, field) / GIB for _, est in rows]
        ax.bar(xs, heights, width, bottom=bottoms, label=name, color=colour)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    over = [est.overhead_bytes / GIB for _, est in rows]
    ax.bar(
        xs,
        over,
        width,
        bottom=bottoms,
        label="overhead (context, cuBLAS, fragmentation)",
        color="white",
        edgecolor=_OVERHEAD,
        hatch="///",
    )
    tops = [b + o for b, o in zip(bottoms, over, strict=True)]
    for x, top, (_, est) in zip(xs, tops, rows, strict=True):
        verdict = {None: "", True: "", False: " ✗"}[est.fits]
        ax.annotate(
            f"{top:,.1f} GiB{verdict}",
            (x, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
            color="#b00000" if est.fits is False else "black",
        )
    budgets = {est.budget_bytes for _, est in rows if est.budget_bytes}
    for budget in sorted(budgets):
        ax.axhline(budget / GIB, color="black", linestyle="--", linewidth=1.2)
        ax.annotate(
            f"budget {budget / GIB:,.1f} GiB",
            (1.0, budget / GIB),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
        )
    highest = max([*tops, *(b / GIB for b in budgets), 1e-9])
    ax.set_ylim(0, highest * 1.15)
    ax.set_xticks(xs, labels, rotation=0 if max(map(len, labels), default=0) < 12 else 20)
    ax.set_ylabel("GiB per device")
    if xlabel:
        ax.set_xlabel(xlabel)
    method = rows[0][1].method if rows else "analytic"
    fig.suptitle(f"{title} ({method} estimate)", fontsize=11)
    ax.set_xlim(-0.75 if n > 1 else -1.2, n - 0.25 if n > 1 else 1.2)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    write_file(path, figure_bytes(fig, fmt), inputs)
