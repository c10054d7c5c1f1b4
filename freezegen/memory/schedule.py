"""The memory peak over a ``freeze.schedule``: the most thawed state the run can reach.

An estimate describes one steady-state step of one freeze plan; a schedule changes the plan as
it thaws, and every thaw adds gradients, optimizer state and (below the lowest trainable block)
saved activations. The run's peak is therefore that of its most thawed state: every entry whose
``at_step`` falls before ``train.max_steps``, and every plateau entry, since a validation plateau
may come at any evaluation. :func:`schedule_peak` estimates the plan before any thaw and after
each entry in the order they can fire (fixed steps in step order, then the plateau entries in
the order they are written, as the generated script fires them), and says at which entry the
peak is first reached, which is what lint budgets and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from freezegen.arch.freeze import FreezePlan, blocks_without, select
from freezegen.memory.estimate import MemoryEstimate
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture


@dataclass(frozen=True)
class SchedulePeak:
    """The largest estimate over a schedule's states and where it is first reached."""

    estimate: MemoryEstimate
    entry: int | None
    """The ``freeze.schedule`` index whose thaw reaches the peak; None: before any thaw."""


def firing_order(spec: Spec) -> list[int]:
    """Return the ``freeze.schedule`` indices that can fire, in the order the script applies
    them: fixed-step entries before ``train.max_steps`` by step, then every plateau entry."""
    schedule = spec.freeze.schedule
    fixed = [
        i
        for i, entry in enumerate(schedule)
        if entry.at_step is not None and entry.at_step < spec.train.max_steps
    ]
    fixed.sort(key=lambda i: schedule[i].at_step or 0)
    return fixed + [i for i, entry in enumerate(schedule) if entry.plateau is not None]


def thawed_plans(spec: Spec, arch: Architecture, plan: FreezePlan) -> list[tuple[int, FreezePlan]]:
    """Return ``plan`` after each entry of :func:`firing_order`, cumulatively, with the entry's
    index. Quantized weights never thaw (FG117 says so)."""
    states = []
    frozen = plan.frozen
    trained = plan.adapter.params if plan.adapter is not None else ()
    for i in firing_order(spec):
        loc = ("freeze", "schedule", i, "unfreeze")
        thawed = select(spec.freeze.schedule[i].unfreeze, plan.params, arch.num_layers, loc).names
        frozen = frozen - (thawed - plan.quantized)
        state = replace(
            plan, frozen=frozen, frozen_blocks=blocks_without(plan.params, frozen, trained)
        )
        states.append((i, state))
    return states


def schedule_peak(spec: Spec, arch: Architecture, plan: FreezePlan) -> SchedulePeak:
    """Return the analytic estimate of the most demanding state ``spec``'s schedule reaches,
    with the entry that reaches it first (``plan``: :func:`~freezegen.arch.training.
    plan_training`'s step-0 plan). Raises :class:`~freezegen.memory.estimate.EstimateError`
    as :func:`~freezegen.memory.analytic.estimate_analytic` does."""
    from freezegen.memory.analytic import estimate_analytic

    peak = SchedulePeak(estimate_analytic(spec, arch=arch, plan=plan), None)
    for i, state in thawed_plans(spec, arch, plan):
        estimate = estimate_analytic(spec, arch=arch, plan=state)
        if estimate.peak_bytes > peak.estimate.peak_bytes:
            peak = SchedulePeak(estimate, i)
    return peak


def run_peak(spec: Spec) -> MemoryEstimate:
    """Return the analytic estimate of the most demanding state of ``spec``'s whole run (its
    schedule's, see :func:`schedule_peak`): what a spec must fit, and what lint and the fixes
    it offers budget. Raises :class:`~freezegen.memory.estimate.EstimateError` as
    :func:`~freezegen.memory.analytic.estimate_analytic` does."""
    from freezegen.arch import ArchitectureError, architecture_for
    from freezegen.arch.params import parameter_table
    from freezegen.arch.training import plan_training
    from freezegen.memory.analytic import estimate_analytic

    if not spec.freeze.schedule:
        return estimate_analytic(spec)
    try:
        arch = architecture_for(spec.model)
    except ArchitectureError:
        arch = None
    if arch is None:
        return estimate_analytic(spec)  # raises the EstimateError that says why
    params = parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
    return schedule_peak(spec, arch, plan_training(spec, arch, params)).estimate
