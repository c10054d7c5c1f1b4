"""The optimizer's states and the temporaries of its step.

Adam/AdamW keep two states per trainable element, SGD with momentum one; fused Adam keeps its step
counters on the device. foreach Adam builds one trainable-sized tensor list (Adam's L2 decay too),
loop Adam two copies of the largest parameter, fused none.
"""

from __future__ import annotations

from freezegen.arch.params import Param
from freezegen.memory.analytic.fsdp import shard_numel
from freezegen.memory.analytic.parts import BLOCK, Part, each, rounded, zero
from freezegen.spec.models import Spec


def optimizer_parts(
    spec: Spec, trainable: list[Param], pbytes: int, shard: int
) -> tuple[tuple[Part, ...], tuple[Part, ...]]:
    """Return (the optimizer states' parts, the optimizer step's temporaries' parts)."""
    o = spec.optimizer
    numels = [shard_numel(p, shard) for p in trainable]
    sizes = [rounded(n * pbytes) for n in numels]
    total = sum(sizes)
    n = sum(numels)
    where = "rank 0's shards" if shard > 1 else ""
    largest = ((max(numels), "elements (the largest trainable tensor)"), (pbytes, "B"))
    one_list = Part(
        f"one trainable-sized tensor list ({o.implementation} {o.name})",
        total,
        each(n, pbytes, "trainable"),
        where,
    )
    no_temps = zero(f"{o.implementation} {o.name} needs no temporaries")
    if o.name == "sgd":
        states = (
            (Part("", total, ((1, "momentum buffer"), (pbytes, "B"), (n, "trainable")), where),)
            if o.momentum > 0
            else zero("SGD without momentum keeps no state")
        )
        temps = no_temps
        if o.weight_decay > 0 and o.implementation == "foreach":
            temps = (one_list,)
        if o.implementation == "loop" and o.weight_decay > 0:
            temps = (Part("a copy for the weight decay", max(sizes), largest),)
        return states, temps
    states = (
        Part(
            "",
            2 * total,
            ((2, "states (exp_avg, exp_avg_sq)"), (pbytes, "B"), (n, "trainable")),
            where,
        ),
    )
    if o.implementation == "fused":
        counters = len(trainable)
        step = Part(
            "on-device step counters", BLOCK * counters, ((counters, "counters"), (BLOCK, "B"))
        )
        return (*states, step), no_temps
    if o.implementation == "loop":
        return states, (Part("copies (loop)", 2 * max(sizes), ((2, "copies"), *largest)),)
    # foreach: torch._foreach_sqrt(exp_avg_sq) (one trainable-sized list). Adam's L2 decay
    # builds grad + wd * param first, but deletes it before the sqrt: still one list at a time.
    return states, (one_list,)
