"""Shared wording for the memory rules: sizes in GiB and the budget a spec names."""

from __future__ import annotations

from freezegen.lint.context import LintContext
from freezegen.spec.presets import GIB, MIB


def gib(n: float) -> str:
    """A size in GiB, or in MiB below one GiB (a tiny run would read 0.0 GiB)."""
    if abs(n) < GIB:
        return f"{n / MIB:.1f} MiB"
    return f"{n / GIB:.1f} GiB"


def budget_name(ctx: LintContext) -> str:
    hw = ctx.spec.hardware
    if hw is None:
        return "no budget"
    card = hw.gpu or f"{hw.memory_gib:g} GiB GPU"
    reserve = f" less {hw.reserve_gib:g} GiB reserved" if hw.reserve_gib else ""
    return f"the {card}{reserve}"


def budget_loc(ctx: LintContext) -> tuple[str, ...]:
    hw = ctx.spec.hardware
    return ("hardware", "gpu" if hw is not None and hw.gpu else "memory_gib")


def peak_when(ctx: LintContext) -> str:
    """Where in the run the estimate's peak occurs, for a message: after a schedule entry's
    thaw (see freezegen.memory.schedule), or nothing when the run starts at its peak."""
    entry = ctx.memory_peak_entry
    if entry is None:
        return ""
    step = ctx.spec.freeze.schedule[entry].at_step
    when = "on a validation plateau" if step is None else f"at step {step}"
    return f" (once freeze.schedule[{entry}] has thawed, {when})"
