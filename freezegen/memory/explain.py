"""``freezegen estimate --explain``: each term of the analytic peak as a formula with its numbers.

The analytic model (:mod:`freezegen.memory.analytic`) takes the largest of several moments of
the step (forward, loss backward, the final norm's and each block's backward, end of backward,
optimizer step), each term of each moment as the :class:`~freezegen.memory.analytic.Part`
records it sums. This module only writes the peak moment's parts out: ``optimizer_states = 2
states (exp_avg, exp_avg_sq) x 4 B x 226,734,080 trainable = 1.69 GiB``. It computes nothing
itself, so the formulas always add up to the estimate's own values.

Pure Python, like the analytic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from freezegen.arch import architecture_for
from freezegen.memory import analytic as _a
from freezegen.memory.analytic.operators import packing_note, routing_note
from freezegen.memory.estimate import (
    FRAGMENTATION,
    MemoryEstimate,
    budget_bytes,
    overhead_bytes,
)
from freezegen.spec.models import Spec
from freezegen.spec.presets import GIB, MIB

KIB = 1024

__all__ = ["Explanation", "Term", "explain", "size"]

TERMS = _a.TERMS


def size(n: float) -> str:
    """Bytes as GiB / MiB / KiB / B, two decimals."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Term:
    """One line of an explanation: ``name = formula = value``."""

    name: str
    value: int
    formula: str
    parts: tuple[tuple[str, int], ...] = ()
    """The formula's parts when it has several: (text with its sign, bytes)."""


@dataclass
class Explanation:
    """The estimate, the moment of the step that sets its peak, and one :class:`Term` each."""

    estimate: MemoryEstimate
    phase: str | None
    terms: list[Term] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    """What the model assumes that the terms do not show (a mixture of experts' routing, what
    packed rows change in the attention)."""

    @property
    def itemised(self) -> bool:
        """Whether every term is written out (always, since the model itself provides them)."""
        return self.phase is not None


def explain(spec: Spec) -> Explanation:
    """Return the analytic estimate of ``spec`` with each term's formula.

    Raises :class:`EstimateError` exactly when the analytic estimate does.
    """
    step = _a.analyse(spec)
    est = _a.estimate_of(spec, step)
    peak = step.peak
    terms = []
    for name in TERMS:
        parts = _shown(peak.parts(name))
        text = " ".join(t for t, _ in parts).removeprefix("+ ") if parts else _zero(peak, name)
        value = sum(p.value for p in peak.parts(name))
        terms.append(Term(name, value, text, tuple(parts) if len(parts) > 1 else ()))
    terms.append(Term("overhead", est.overhead_bytes, _overhead(spec, est)))
    if est.budget_bytes:
        terms.append(Term("budget", est.budget_bytes, _budget(spec)))
    arch = architecture_for(spec.model)
    notes = (routing_note(arch), packing_note(spec, arch)) if arch else ()
    assumptions = [note for note in notes if note]
    return Explanation(est, phase_title(peak), terms, assumptions)


def phase_title(moment: _a.Moment) -> str:
    """A moment of the step in words."""
    kind, block = moment.kind, moment.block
    if kind is _a.MomentKind.BLOCK_BACKWARD_END:
        return f"the end of block {block}'s backward (its input norm, its gradients whole)"
    if kind is _a.MomentKind.BLOCK_BACKWARD:
        return f"the backward of block {block} (its MLP)"
    if kind is _a.MomentKind.BLOCK_ALL_GATHER:
        return (
            f"block {block}'s forward all-gather (FSDP copies its parameters out of the "
            "all-gather output while the previous unit's output is still referenced)"
        )
    return _PHASES[kind]


_PHASES = {
    _a.MomentKind.FORWARD: "the end of the forward (the logits and the loss)",
    _a.MomentKind.LOSS_BACKWARD: "the backward of the loss (the logits' gradients)",
    _a.MomentKind.HEAD_BACKWARD: "the backward of the final norm (after the head's)",
    _a.MomentKind.BACKWARD_END: "the end of the backward (every gradient exists)",
    _a.MomentKind.OPTIMIZER: "the optimizer step",
}


# ---------------------------------------------------------------------------------------------
# Formulas


def _shown(parts: tuple[_a.Part, ...]) -> list[tuple[str, int]]:
    """Each part of a term that is not 0 bytes as (``+ label: factor x factor (note)``, bytes)."""
    return [(f"{'-' if p.value < 0 else '+'} {_part(p)}", p.value) for p in parts if p.value]


def _zero(moment: _a.Moment, name: str) -> str:
    notes = "; ".join(p.note for p in moment.parts(name) if p.note)
    return f"0 ({notes})" if notes else "0"


def _part(p: _a.Part) -> str:
    product = " x ".join(f"{_number(n)} {unit}" for n, unit in p.factors)
    text = " ".join(x for x in (p.label + (":" if p.label and product else ""), product) if x)
    if not product:
        text += f" {size(abs(p.value))}"
    return f"{text} ({p.note})" if p.note else text


def _number(n: float) -> str:
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def _overhead(spec: Spec, est: MemoryEstimate) -> str:
    fixed = overhead_bytes(spec, 0)
    frag = est.overhead_bytes - fixed
    return (
        f"CUDA context + cuBLAS workspace {size(fixed)} + {FRAGMENTATION:.0%} fragmentation of "
        f"the peak {size(frag)}"
    )


def _budget(spec: Spec) -> str:
    hw = spec.hardware
    assert hw is not None
    total = budget_bytes(spec) + int(hw.reserve_gib * GIB)
    text = f"{hw.gpu}'s {size(total)}" if hw.gpu else f"hardware.memory_gib {hw.memory_gib:g}"
    if hw.reserve_gib:
        text += f" - reserve_gib {hw.reserve_gib:g}"
    return text
