"""Peak-memory estimates of a spec's training step (docs/architecture.md, "Memory estimate").

Public surface:

* :func:`estimate` -- ``estimate(spec, method="analytic" | "traced") -> MemoryEstimate``;
* :class:`MemoryEstimate` / :class:`Breakdown` -- the result and its JSON form
  (``to_json_dict()``);
* :class:`EstimateError` -- a spec the chosen method cannot handle, with a readable message.

The analytic method is pure Python (``freezegen lint`` uses it without importing torch); the
traced method imports torch and transformers only when called.
"""

from __future__ import annotations

from typing import Literal

from freezegen.memory.estimate import Breakdown, EstimateError, MemoryEstimate
from freezegen.spec.models import Spec

__all__ = ["Breakdown", "EstimateError", "MemoryEstimate", "estimate"]


def estimate(spec: Spec, method: Literal["analytic", "traced"] = "analytic") -> MemoryEstimate:
    """Return the per-device peak-memory estimate of ``spec``'s steady-state training step.

    ``analytic`` models each term without torch (fast; not for ``factory`` models); ``traced``
    runs two real optimizer steps on fake tensors and measures them (exact for what it runs;
    seconds for a 7B model). Raises :class:`EstimateError` when the method cannot handle the
    spec (a factory model analytically, a factory that fails, FSDP traced, nothing to train).
    """
    if method == "analytic":
        from freezegen.memory.analytic import estimate_analytic

        return estimate_analytic(spec)
    if method == "traced":
        from freezegen.memory.traced import estimate_traced

        return estimate_traced(spec)
    raise ValueError(f"unknown estimate method {method!r}; use 'analytic' or 'traced'")
