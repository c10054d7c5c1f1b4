"""Block facts several rules share: which blocks are checkpointed, where gradients start."""

from __future__ import annotations

from freezegen.arch.params import EMBEDDINGS
from freezegen.lint.context import LintContext
from freezegen.spec.selectors import parse_ranges


def checkpointed_blocks(ctx: LintContext, depth: int) -> list[int]:
    """Block indices activation checkpointing wraps (empty when it is off)."""
    ac = ctx.spec.checkpointing
    if ac is None:
        return []
    layers = ac.layers
    if layers == "all":
        return list(range(depth))
    if isinstance(layers, str) and layers.startswith("every-"):
        return list(range(0, depth, int(layers.removeprefix("every-"))))
    indices = layers if isinstance(layers, list) else parse_ranges(layers)
    return [i for i in indices if i < depth]


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
