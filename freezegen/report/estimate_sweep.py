"""``--sweep`` output: one table row per sweep point (peak, required, budget, headroom, fits)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from freezegen.memory.estimate import MemoryEstimate
from freezegen.memory.explain import size


def _fits(est: MemoryEstimate) -> str:
    return {None: "-", True: "yes", False: "NO"}[est.fits]


def render_sweep(
    rows: Sequence[tuple[str, MemoryEstimate]], title: str, key: str, *, color: bool = False
) -> str:
    """Return a rich table of the sweep: the swept value(s) then the estimate's columns."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(key)
    for name in ("trainable", "activations", "peak", "required", "budget", "headroom"):
        table.add_column(name, justify="right")
    table.add_column("fits", justify="center")
    for label, est in rows:
        headroom = est.headroom_bytes
        table.add_row(
            label,
            f"{est.trainable_parameters:,}",
            size(est.breakdown.activations),
            size(est.peak_bytes),
            size(est.required_bytes),
            size(est.budget_bytes) if est.budget_bytes else "-",
            "-" if headroom is None else size(headroom),
            _fits(est),
        )
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=120, no_color=not color)
    console.print(table)
    method = rows[0][1].method if rows else "analytic"
    console.print(f"method: {method}; required = peak + overhead (context, cuBLAS, fragmentation)")
    return buf.getvalue()
