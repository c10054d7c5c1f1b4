"""A memory estimate as a readable table: each term, the peak, overhead, budget, headroom."""

from __future__ import annotations

from freezegen.memory.estimate import MemoryEstimate
from freezegen.spec.presets import GIB, MIB


def _gib(n: int) -> str:
    # A tiny model's terms would all read 0.00 GiB; below a GiB, MiB says something.
    if abs(n) < GIB:
        return f"{n / MIB:,.1f} MiB"
    return f"{n / GIB:,.2f} GiB"


def render_estimate(estimate: MemoryEstimate, title: str, *, color: bool = False) -> str:
    """Return the estimate as a table (rich, boxed) ending with a verdict line."""
    import io

    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=True)
    table.add_column("term")
    table.add_column("memory", justify="right")
    table.add_column("share of peak", justify="right")
    peak = estimate.peak_bytes or 1
    for name, value in vars(estimate.breakdown).items():
        table.add_row(name.replace("_", " "), _gib(value), f"{100 * value / peak:.0f}%")
    table.add_section()
    table.add_row(f"peak ({estimate.method})", _gib(estimate.peak_bytes), "100%")
    table.add_row("overhead (context, cuBLAS, fragmentation)", _gib(estimate.overhead_bytes), "")
    table.add_row("required", _gib(estimate.required_bytes), "")
    if estimate.budget_bytes:
        table.add_row("budget", _gib(estimate.budget_bytes), "")
        headroom = estimate.headroom_bytes or 0
        table.add_row("headroom", _gib(headroom), "")
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=100, no_color=not color)
    console.print(table)
    trainable, total = estimate.trainable_parameters, estimate.total_parameters
    share = 100 * trainable / total if total else 0.0
    console.print(f"trainable parameters: {trainable:,} of {total:,} ({share:.1f}%)")
    if estimate.fits is None:
        console.print("no hardware in the spec: add hardware: {gpu: ...} to check the budget")
    elif estimate.fits:
        console.print(f"fits, with {_gib(estimate.headroom_bytes or 0)} to spare")
    else:
        console.print(f"does NOT fit: {_gib(-(estimate.headroom_bytes or 0))} over budget")
    return buf.getvalue()
