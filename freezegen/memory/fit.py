"""``freezegen fit``: the largest value of a numeric spec key whose run fits the budget.

For each key to maximize (in order; each found value is kept while searching the next), a
candidate value is tested once, at the lowest peak reachable without changing the training
maths (:func:`freezegen.memory.fixes.strongest_safe`: fused optimizer, sdpa, smaller
micro-batches at the same global batch, activation checkpointing; a knob that changes a key
being searched or kept stays off). The peak grows with the key, so the search gallops up from
the spec's own value and then bisects: a few dozen analytic estimates, never a sweep. The
winner then gets the *cheapest* knob combination that still fits
(:func:`freezegen.memory.fixes.cheapest_safe_fit`).

``batch.micro_batch_size`` keeps the global batch (micro x accumulation) unless
``batch.grad_accum_steps`` is kept as well: its candidates are then the divisors of the global
batch, and accumulation follows. ``batch.seq_len`` stops at the model's positions when they are
known. Everything is analytic: no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from freezegen.memory.analytic import estimate_analytic
from freezegen.memory.estimate import EstimateError, MemoryEstimate
from freezegen.memory.fixes import COMFORT, Fix, cheapest_safe_fit, fits_with, strongest_safe
from freezegen.spec.limits import MAX_COUNT
from freezegen.spec.models import Spec

MICRO, ACCUM, SEQ = "batch.micro_batch_size", "batch.grad_accum_steps", "batch.seq_len"


class FitError(Exception):
    """A search that cannot be run (a key that is no whole number, a model the analytic
    estimate cannot handle); the message says why."""


@dataclass(frozen=True)
class Trial:
    """One candidate value and its estimate at the strongest maths-keeping setting."""

    key: str
    value: int
    fits: bool
    estimate: MemoryEstimate | None


@dataclass
class FitResult:
    """The best value of each key (None: not even the smallest fits), every trial in order,
    and the winning spec with the cheapest knobs that fit (None when a key found nothing)."""

    best: dict[str, int | None] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    fix: Fix | None = None


def fit(
    spec: Spec,
    maximize: Sequence[str],
    keep: Collection[str] = (),
    headroom: float = COMFORT,
    multiple_of: int = 1,
) -> FitResult:
    """Search the largest value of each key in ``maximize`` (a multiple of ``multiple_of``)
    that fits ``spec``'s budget with ``headroom`` (a share of the budget) spare; raises
    :class:`FitError` (see there)."""
    if spec.hardware is None:
        raise FitError("the spec has no hardware section: there is no budget to fit")
    held = {*maximize, *keep}
    result = FitResult()
    current = spec
    for key in maximize:
        start = _whole_number(current, key)
        candidates = _candidates(current, key, held, multiple_of)
        if not candidates:
            raise FitError(f"no value of {key} is a multiple of {multiple_of} here")
        global_kept = key == MICRO and ACCUM not in held

        def fits(
            value: int, key: str = key, base: Spec = current, kept: bool = global_kept
        ) -> bool:
            est = _estimate(strongest_safe(_set(base, key, value, kept), held))
            ok = fits_with(est, headroom)
            result.trials.append(Trial(key, value, ok, est))
            return ok

        best = _largest(candidates, _index_at_most(candidates, start), fits)
        result.best[key] = best
        if best is None:
            return result
        current = _set(current, key, best, global_kept)
    result.fix = cheapest_safe_fit(current, held, headroom)
    return result


def _estimate(spec: Spec) -> MemoryEstimate | None:
    try:
        return estimate_analytic(spec)
    except EstimateError as exc:
        raise FitError(f"the analytic estimate cannot run: {exc}") from None


def _candidates(spec: Spec, key: str, held: Collection[str], step: int) -> Sequence[int]:
    """The values ``key`` may take, ascending (a range is never listed)."""
    batch = spec.batch
    if key == MICRO and ACCUM not in held:
        total = batch.micro_batch_size * batch.grad_accum_steps  # the global batch, per device
        return [d for d in range(step, total + 1, step) if total % d == 0]
    limit = MAX_COUNT
    if key == SEQ:
        from freezegen.arch import ArchitectureError, architecture_for

        try:
            arch = architecture_for(spec.model)
        except ArchitectureError:
            arch = None
        if arch is not None:
            limit = arch.max_positions
    return range(step, limit + 1, step)


def _index_at_most(candidates: Sequence[int], value: int) -> int:
    """The index of the largest candidate at most ``value`` (0 when all are larger)."""
    lo, hi = 0, len(candidates) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if candidates[mid] <= value:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _largest(candidates: Sequence[int], start: int, fits: Callable[[int], bool]) -> int | None:
    """The largest candidate for which ``fits`` holds, given that it holds for every smaller
    one: gallop up from ``start`` while it holds, then bisect the last step."""
    if fits(candidates[start]):
        good, step = start, 1
        bad = len(candidates)
        while good + step < len(candidates):
            if fits(candidates[good + step]):
                good, step = good + step, step * 2
            else:
                bad = good + step
                break
    else:
        good, bad = -1, start
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(candidates[mid]):
            good = mid
        else:
            bad = mid
    return None if good < 0 else candidates[good]


def _whole_number(spec: Spec, key: str) -> int:
    value: Any = spec.model_dump(by_alias=True)
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise FitError(f"{key} is not a key of this spec (or not set in it)")
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int):
        raise FitError(f"{key} is {value!r}, not a whole number to maximize")
    return value


def _set(spec: Spec, key: str, value: int, global_kept: bool = False) -> Spec:
    """``spec`` with ``key`` set (with ``global_kept``, the micro-batch with the accumulation
    that keeps the global batch), validated again."""
    data = spec.model_dump(by_alias=True, exclude_unset=False)
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    old = node[parts[-1]]
    node[parts[-1]] = value
    if global_kept:
        data["batch"]["grad_accum_steps"] = old * data["batch"]["grad_accum_steps"] // value
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise FitError(
            f"{key}={value} is not a valid spec value: {exc.errors()[0]['msg']}"
        ) from None
