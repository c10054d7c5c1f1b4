"""``freezegen fit`` output: every value tried, in the order tried, with the verdict the search
used (fits with the headroom asked for, at the strongest knobs that keep the maths)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from freezegen.memory.explain import size
from freezegen.memory.fit import Trial


def render_trials(
    trials: Sequence[Trial], title: str, headroom: float, *, color: bool = False
) -> str:
    """Return a rich table of ``trials``: key, value, peak, required, budget, spare, verdict."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("key")
    for name in ("value", "activations", "peak", "required", "budget", "spare"):
        table.add_column(name, justify="right")
    table.add_column(f"fits with {headroom:.0%} spare", justify="center")
    for trial in trials:
        est = trial.estimate
        if est is None:
            continue
        spare = est.headroom_bytes
        table.add_row(
            trial.key,
            f"{trial.value:,}",
            size(est.breakdown.activations),
            size(est.peak_bytes),
            size(est.required_bytes),
            size(est.budget_bytes) if est.budget_bytes else "-",
            "-" if spare is None else size(spare),
            "yes" if trial.fits else "NO",
        )
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=color, width=120, no_color=not color)
    console.print(table)
    console.print(
        "each value at the strongest knobs that keep the maths (fused optimizer, sdpa, smaller "
        "micro-batches, checkpointing); the result takes the cheapest that fit"
    )
    return buf.getvalue()
