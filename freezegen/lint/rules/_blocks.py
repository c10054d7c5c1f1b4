"""Block facts several rules share: where gradients start."""

from __future__ import annotations

from freezegen.arch.params import EMBEDDINGS
from freezegen.lint.context import LintContext


def grad_free_prefix(ctx: LintContext) -> int | None:
    """How many bottom blocks no tensor requiring grad flows through; None if unknown.

    Autograd records nothing until the first tensor that requires grad, so these blocks save
    no activations and get no backward pass.
    """
    plan, arch = ctx.freeze_plan, ctx.architecture
    if plan is None or arch is None:
        return None
    if any(p.kind == EMBEDDINGS and p.name not in plan.frozen for p in plan.params):
        return 0
    first = plan.first_trainable_block
    return arch.num_layers if first is None else first
