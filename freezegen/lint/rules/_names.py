"""Name hints several rules share: what the model's parameters and linears are called."""

from __future__ import annotations

from freezegen.arch.families import family_of
from freezegen.arch.linears import linears
from freezegen.lint.context import LintContext


def example_names(ctx: LintContext) -> str:
    """A few of the model's parameter names, quoted, for a hint."""
    params = ctx.params or []
    picks = [params[0].name] if params else []
    picks += [p.name for p in params if p.block == 0][:2]
    return ", ".join(f"'{n}'" for n in picks)


def linear_names(ctx: LintContext) -> str:
    """What the linears inside the model's blocks are called (the last part of each name, in
    model order, once each) and their kinds, for a hint about adapter targets."""
    if ctx.params is None or ctx.architecture is None:
        return ""
    found = [lin for lin in linears(family_of(ctx.architecture), ctx.params) if lin.block == 0]
    names = dict.fromkeys(lin.name.rsplit(".", 1)[-1] for lin in found)
    kinds = dict.fromkeys(lin.kind for lin in found)
    return f"this model's are {', '.join(names)} (kinds {', '.join(kinds)})"
