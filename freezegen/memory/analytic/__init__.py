"""The analytic estimator: a per-term model of one training step, in pure Python (no torch).

``freezegen lint`` calls this, so it must stay import-light. The terms follow what PyTorch keeps
alive at each moment of the steady-state (second) optimizer step, and the peak is the largest.
Each concern has its module:

* :mod:`.parts` -- what the model returns: the moments of the step (:class:`Moment`, its kind a
  :class:`MomentKind`), each term as the :class:`Part` records it sums (label, factors, bytes);
* :mod:`.timeline` -- the moments in order: forward, the loss's backward, the final norm's
  backward, each block's backward, the end of the backward, the optimizer step;
* :mod:`.operators` -- what the operators of one block (and the head, and the embeddings) save
  per token, by precision (:class:`~freezegen.spec.precision.Precision`), by which weights train,
  sdpa or eager attention, packed rows (the mask sdpa keeps), dropout. Nothing is fitted: the
  traced estimator reproduces them to the byte at reduced size;
* :mod:`.activations` -- what each block keeps for the backward: nothing below the first block
  that receives a gradient, only its input when checkpointed, the autocast weight copies;
* :mod:`.loss` -- the head and the language-model loss path (``b*s*vocab``), which often
  dominates an LLM's peak;
* :mod:`.gradients` -- the gradients alive during the backward, a tied head's included;
* :mod:`.optimizer` -- the optimizer states and the temporaries of its step;
* :mod:`.ddp`, :mod:`.fsdp` -- the reducer's buckets; the shards, gathered units and unsharded
  gradients of FSDP2 as rank 0 holds them.

:func:`analyse` builds every moment once; :func:`estimate_analytic` takes the largest, and
``freezegen estimate --explain`` (:mod:`freezegen.memory.explain`) writes its parts out.
"""

from __future__ import annotations

from freezegen.arch import ArchitectureError, architecture_for
from freezegen.arch.freeze import FreezePlan
from freezegen.arch.params import parameter_table
from freezegen.arch.training import plan_training
from freezegen.memory.analytic.parts import TERMS, Moment, MomentKind, Part, Step
from freezegen.memory.analytic.timeline import step_moments
from freezegen.memory.estimate import EstimateError, MemoryEstimate, finish, refuse_unmodelled
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture

__all__ = [
    "TERMS",
    "Moment",
    "MomentKind",
    "Part",
    "Step",
    "analyse",
    "estimate_analytic",
    "estimate_of",
]


def estimate_analytic(
    spec: Spec, *, arch: Architecture | None = None, plan: FreezePlan | None = None
) -> MemoryEstimate:
    """Return the modelled per-device peak of the spec's steady-state optimizer step.

    ``arch`` and ``plan`` may be passed when the caller has resolved them already (lint has).
    Raises :class:`EstimateError` for a ``factory`` model (only tracing knows it) or a config
    that cannot be read.
    """
    return estimate_of(spec, analyse(spec, arch=arch, plan=plan))


def estimate_of(spec: Spec, step: Step) -> MemoryEstimate:
    """The estimate of ``step`` (:func:`analyse`'s result for ``spec``): its peak moment."""
    return finish(
        "analytic", spec, step.peak.breakdown, step.trainable_parameters, step.total_parameters
    )


def analyse(
    spec: Spec, *, arch: Architecture | None = None, plan: FreezePlan | None = None
) -> Step:
    """Return every moment of the spec's step, each term as its parts (see :class:`Part`).

    ``arch`` and ``plan``, when given, must be the spec's own (architecture_for,
    plan_training).
    Raises :class:`EstimateError` exactly when :func:`estimate_analytic` does.
    """
    refuse_unmodelled(spec)
    if spec.model.factory is not None:
        raise EstimateError(
            "a factory model can only be measured, not modelled; use the traced estimate (--trace)"
        )
    if arch is None:
        try:
            arch = architecture_for(spec.model)
        except ArchitectureError as exc:
            raise EstimateError(str(exc)) from None
    assert arch is not None
    if plan is None:
        params = parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
        plan = plan_training(spec, arch, params)
    if not plan.trainable:
        raise EstimateError("the freeze section leaves no parameter to train")
    return step_moments(spec, arch, plan)
