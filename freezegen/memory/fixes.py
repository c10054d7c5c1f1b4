"""Which spec change makes a run fit, and what each knob would do to the peak.

Knobs are tried cheapest first: the ones that leave the training maths untouched and cost no
speed (a fused optimizer, sdpa attention), then those that keep the maths but cost time
(smaller micro-batches with more accumulation, activation checkpointing), then those that change
numerics or what trains (bf16 autocast, freezing more blocks; with an adapter: no adapter
dropout, a 4-bit base, a smaller rank, fewer targets, fewer adapted blocks). Everything is
analytic: no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from freezegen.memory.estimate import EstimateError, MemoryEstimate
from freezegen.memory.schedule import run_peak
from freezegen.spec.models import FirstBlocks, LastBlocks, QuantizationSpec, Spec
from freezegen.spec.presets import GPUS


@dataclass(frozen=True)
class Fix:
    """One change to a spec, in words, with the estimate it would give."""

    change: str
    spec: Spec
    estimate: MemoryEstimate
    changes_maths: bool = False
    """Whether the change alters what the run computes (precision, freezing), so that
    ``lint --fix`` applies it only with ``--unsafe-fixes``."""

    @property
    def fits(self) -> bool:
        return bool(self.estimate.fits)


def _update(spec: Spec, **sections: dict[str, object]) -> Spec:
    """Return ``spec`` with fields of nested sections (or top-level fields) replaced."""
    changes: dict[str, object] = {}
    for name, values in sections.items():
        current = getattr(spec, name)
        changes[name] = (
            current.model_copy(update=values) if hasattr(current, "model_copy") else values
        )
    return spec.model_copy(update=changes)


Knob = Callable[[Spec], list[Spec]]
"""A knob returns the specs it leads to, mildest first (empty when it does not apply)."""


def _fused(spec: Spec) -> list[Spec]:
    if spec.optimizer.implementation == "fused" or spec.optimizer.name == "sgd":
        return []
    return [_update(spec, optimizer={"implementation": "fused"})]


def _sdpa(spec: Spec) -> list[Spec]:
    return [] if spec.model.attention == "sdpa" else [_update(spec, model={"attention": "sdpa"})]


def _smaller_micro_batches(spec: Spec) -> list[Spec]:
    # Same global batch: the gradients are identical, only slower per sample.
    out, b = [], spec.batch
    micro, accum = b.micro_batch_size, b.grad_accum_steps
    while micro % 2 == 0:
        micro, accum = micro // 2, accum * 2
        out.append(_update(spec, batch={"micro_batch_size": micro, "grad_accum_steps": accum}))
    return out


def _checkpointing(spec: Spec) -> list[Spec]:
    if spec.checkpointing is not None and spec.checkpointing.layers == "all":
        return []
    return [spec.model_copy(update={"activation_checkpointing": True})]


def _bf16(spec: Spec) -> list[Spec]:
    hw = spec.hardware
    supported = hw is not None and (GPUS[hw.gpu].bf16 if hw.gpu else bool(hw.bf16))
    if spec.precision != "fp32" or not supported:
        return []
    return [spec.model_copy(update={"precision": "bf16"})]


def _freeze_more(spec: Spec) -> list[Spec]:
    if spec.adapter is not None:
        return []  # the adapter decides what trains (the freeze section has no effect)
    layers = spec.freeze.layers
    first = layers.first if isinstance(layers, FirstBlocks) else 0 if layers is None else None
    if first is None:
        return []
    depth = _depth(spec)
    return [
        _update(spec, freeze={"layers": FirstBlocks(first=n), "embeddings": True})
        for n in range(first + 2, depth, 2)
    ]


def _depth(spec: Spec) -> int:
    from freezegen.arch import ArchitectureError, architecture_for

    try:
        arch = architecture_for(spec.model)
    except ArchitectureError:
        return 0
    return arch.num_layers if arch is not None else 0


# Adapter settings: each changes what trains or how the base is stored, so each changes the
# training maths. Without dropout an adapter keeps no copy of its input; a smaller rank keeps
# smaller intermediates and states; fewer targets or fewer adapted blocks (the last ones: the
# gradient then stops above the lowest adapter) keep fewer activations; a 4-bit base stores
# the frozen linears in about a quarter of their 16-bit size.


def _adapter_without_dropout(spec: Spec) -> list[Spec]:
    if spec.adapter is None or not spec.adapter.dropout:
        return []
    return [_update(spec, adapter={"dropout": 0.0})]


def _smaller_rank(spec: Spec) -> list[Spec]:
    if spec.adapter is None:
        return []
    out, r = [], spec.adapter.r
    while r > MIN_RANK:
        r //= 2
        out.append(_update(spec, adapter={"r": r}))
    return out


MIN_RANK = 4
"""The smallest LoRA rank the fix search proposes."""


def _attention_targets_only(spec: Spec) -> list[Spec]:
    a = spec.adapter
    if a is None or not (a.targets == "all-linear" or "mlp" in a.targets):
        return []
    return [_update(spec, adapter={"targets": ["attention"]})]


def _fewer_adapted_blocks(spec: Spec) -> list[Spec]:
    if spec.adapter is None:
        return []
    depth = _depth(spec)
    n = len(spec.adapter.indices(depth)) if spec.adapter.layers is not None else depth
    out = []
    while n > 1:
        n //= 2
        out.append(_update(spec, adapter={"layers": LastBlocks(last=n)}))
    return out


def _quantized_base(spec: Spec) -> list[Spec]:
    from freezegen.arch.training import quantizes

    already = spec.quantization.weights if quantizes(spec) else None  # type: ignore[union-attr]
    # nf4 stores a quarter of int8's bytes per weight and keeps no matmul inputs alive
    if spec.adapter is None or already not in (None, "int8") or spec.precision == "bf16-pure":
        return []
    if spec.distributed.strategy == "fsdp":
        return []
    hw = spec.hardware
    bf16 = hw is None or (GPUS[hw.gpu].bf16 if hw.gpu else bool(hw.bf16))
    nf4 = QuantizationSpec(weights="nf4", double_quant=True, compute="bf16" if bf16 else "fp16")
    return [spec.model_copy(update={"quantization": nf4})]


# (words, knob, cost of each step of it, changes the training maths?) in the order applied.
# Costs are rough relative slowdowns: a fused optimizer and sdpa are free (usually faster),
# each halving of the micro-batch loses some GPU utilisation, checkpointing recomputes about one
# forward pass (+33%), and precision or freezing change what the run computes.
KNOBS: list[tuple[str, Knob, float, bool]] = [
    ("optimizer.implementation: fused", _fused, 0.01, False),
    ("model.attention: sdpa", _sdpa, 0.01, False),
    ("smaller micro-batches", _smaller_micro_batches, 0.1, False),
    ("activation_checkpointing: true", _checkpointing, 0.33, False),
    ("precision: bf16", _bf16, 1.0, True),
    ("freeze more blocks", _freeze_more, 1.0, True),
    ("adapter.dropout: 0", _adapter_without_dropout, 0.5, True),
    ("quantization.weights: nf4", _quantized_base, 1.0, True),
    ("smaller adapter.r", _smaller_rank, 1.0, True),
    ("adapter.targets: [attention]", _attention_targets_only, 1.0, True),
    ("adapt fewer blocks", _fewer_adapted_blocks, 1.0, True),
]


def _estimate(spec: Spec) -> MemoryEstimate | None:
    try:
        return run_peak(spec)
    except EstimateError:
        return None


def knob_effects(spec: Spec) -> list[Fix]:
    """Each knob applied alone at its mildest setting, with the estimate it gives."""
    out = []
    for change, knob, _, _ in KNOBS:
        variants = knob(spec)
        result = _estimate(variants[0]) if variants else None
        if result is not None:
            out.append(_describe(spec, [change], Fix(change, variants[0], result)))
    return out


COMFORT = 0.10
"""Headroom, as a share of the budget, that a preferred fix leaves (FG202's margin)."""

_Plan = tuple[int, ...]
"""For each knob, how many of its steps to take (0: leave it alone)."""


def _apply(spec: Spec, plan: _Plan) -> tuple[Spec, list[str]] | None:
    changes = []
    for (change, knob, _, _), steps in zip(KNOBS, plan, strict=True):
        if steps:
            variants = knob(spec)
            if len(variants) < steps:
                return None
            spec = variants[steps - 1]
            changes.append(change)
    return spec, changes


def _plans(spec: Spec, allow_maths: bool, fixed: _Plan | None = None) -> list[_Plan]:
    """Every combination of knob steps (the maths-changing knobs held at ``fixed``)."""
    plans: list[_Plan] = [()]
    for i, (_, knob, _, maths) in enumerate(KNOBS):
        if maths and fixed is not None:
            options = [fixed[i]]
        elif maths and not allow_maths:
            options = [0]
        else:
            options = list(range(len(knob(spec)) + 1))
        plans = [(*p, o) for p in plans for o in options]
    return plans


def _cost(plan: _Plan) -> float:
    return sum(steps * cost for (_, _, cost, _), steps in zip(KNOBS, plan, strict=True))


def _first_fit(spec: Spec, plans: list[_Plan], margin: float) -> tuple[_Plan, Fix] | None:
    for plan in sorted(plans, key=lambda p: (_cost(p), p)):
        applied = _apply(spec, plan)
        result = _estimate(applied[0]) if applied else None
        if (
            applied
            and result is not None
            and result.fits
            and (result.headroom_bytes or 0) >= margin * result.budget_bytes
        ):
            maths = any(steps and knob[3] for knob, steps in zip(KNOBS, plan, strict=True))
            return plan, Fix(" + ".join(applied[1]), applied[0], result, maths)
    return None


def cheapest_fit(spec: Spec) -> Fix | None:
    """The cheapest change that makes ``spec`` fit its budget, or None when nothing tried does.

    Knobs that keep the training maths (fused optimizer, sdpa, smaller micro-batches at the
    same global batch, checkpointing) are searched first, every combination, cheapest first.
    Only when none fits are precision and freezing touched: their mildest setting that fits
    with every maths-keeping knob at full strength, after which the maths-keeping knobs are
    relaxed again to the cheapest combination that still fits. A fix that leaves 10% of the
    budget spare is preferred to one that only just fits.
    """
    for margin in (COMFORT, 0.0):
        found = _search(spec, margin)
        if found is not None:
            return _describe(spec, found.change.split(" + "), found)
    return None


def _search(spec: Spec, margin: float) -> Fix | None:
    found = _first_fit(spec, _plans(spec, allow_maths=False), margin)
    if found is None:
        strongest = tuple(0 if maths else len(knob(spec)) for _, knob, _, maths in KNOBS)
        tier = [
            p
            for p in _plans(spec, allow_maths=True)
            if all(p[i] == strongest[i] for i, k in enumerate(KNOBS) if not k[3])
        ]
        anchor = _first_fit(spec, tier, margin)
        if anchor is None:
            return None
        found = _first_fit(spec, _plans(spec, allow_maths=True, fixed=anchor[0]), margin)
    return None if found is None else found[1]


def _describe(original: Spec, changes: list[str], fix: Fix) -> Fix:
    words = " + ".join(changes)
    b0, b1 = original.batch, fix.spec.batch
    if "smaller micro-batches" in changes:
        words = words.replace(
            "smaller micro-batches",
            f"micro_batch_size {b0.micro_batch_size} -> {b1.micro_batch_size} with "
            f"grad_accum_steps {b0.grad_accum_steps} -> {b1.grad_accum_steps} (same global batch)",
        )
    layers = fix.spec.freeze.layers
    if "freeze more blocks" in changes and isinstance(layers, FirstBlocks):
        words = words.replace("freeze more blocks", f"freeze.layers: {{first: {layers.first}}}")
    adapter = fix.spec.adapter
    if adapter is not None and original.adapter is not None:
        words = words.replace(
            "smaller adapter.r", f"adapter.r: {original.adapter.r} -> {adapter.r}"
        )
        if isinstance(adapter.layers, LastBlocks):
            words = words.replace(
                "adapt fewer blocks", f"adapter.layers: {{last: {adapter.layers.last}}}"
            )
    return Fix(words, fix.spec, fix.estimate, fix.changes_maths)


def _held(spec: Spec, held: Collection[str]) -> list[bool]:
    """For each knob, whether it changes one of the ``held`` dotted keys (a key being searched
    or kept): such a knob stays off."""
    from freezegen.spec.edit import edits_between

    out = []
    for _, knob, _, _ in KNOBS:
        variants = knob(spec)
        touched = {".".join(e.loc) for v in variants[:1] for e in edits_between(spec, v)}
        out.append(any(t == k or t.startswith(k + ".") for t in touched for k in held))
    return out


def strongest_safe(spec: Spec, held: Collection[str] = ()) -> Spec:
    """``spec`` with every knob that keeps the training maths at its strongest setting, less
    those that change a ``held`` key: the lowest peak reachable without changing what the run
    computes (``fit`` tests each candidate here, one estimate each)."""
    off = _held(spec, held)
    plan = tuple(
        0 if maths or skip else len(knob(spec))
        for (_, knob, _, maths), skip in zip(KNOBS, off, strict=True)
    )
    applied = _apply(spec, plan)
    return spec if applied is None else applied[0]


def fits_with(estimate: MemoryEstimate | None, margin: float) -> bool:
    """Whether ``estimate`` fits its budget with ``margin`` of it spare."""
    return bool(
        estimate is not None
        and estimate.fits
        and (estimate.headroom_bytes or 0) >= margin * estimate.budget_bytes
    )


def cheapest_safe_fit(
    spec: Spec, held: Collection[str] = (), margin: float = COMFORT
) -> Fix | None:
    """The cheapest combination of the maths-keeping knobs (those changing a ``held`` key left
    alone) that makes ``spec`` fit with ``margin`` spare; a Fix with no change when it fits as
    it is; None when none does."""
    off = _held(spec, held)
    plans = [
        p
        for p in _plans(spec, allow_maths=False)
        if all(not steps for steps, skip in zip(p, off, strict=True) if skip)
    ]
    found = _first_fit(spec, plans, margin)
    if found is None:
        return None
    fix = found[1]
    return _describe(spec, fix.change.split(" + "), fix) if fix.change else fix
