"""The moments of the step and the parts each term sums: what the analytic model returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from freezegen.memory.estimate import Breakdown
from freezegen.spec.presets import Architecture

BLOCK = 512
"""The CUDA caching allocator's rounding: every tensor takes a multiple of 512 bytes."""

TERMS = ("parameters", "gradients", "optimizer_states", "activations", "temporaries")


def rounded(n: float) -> int:
    """``n`` bytes as the allocator hands them out: up to a multiple of :data:`BLOCK`."""
    n = int(n)
    return 0 if n <= 0 else -(-n // BLOCK) * BLOCK


@dataclass(frozen=True)
class Part:
    """One summand of one term at one moment of the step.

    ``value``: its bytes, each tensor rounded up to the allocator's 512-byte blocks (negative:
    freed at this moment); ``factors``: the (number, unit) pairs whose product it is before that
    rounding, e.g. ``((226_734_080, "trainable"), (4, "B"))``; ``label``: what it is; ``note``: a
    remark (a dtype, why the term is 0). ``freezegen estimate --explain`` writes these out.
    """

    label: str
    value: int
    factors: tuple[tuple[float, str], ...] = ()
    note: str = ""


Parts = list[Part] | tuple[Part, ...]


def zero(why: str) -> tuple[Part, ...]:
    """A term that is 0 bytes, with the reason."""
    return (Part("", 0, note=why),)


def each(n: int, nbytes: int, unit: str = "params") -> tuple[tuple[float, str], ...]:
    """The factors of ``n`` elements of ``nbytes`` each."""
    return ((n, unit), (nbytes, "B"))


def matrix(arch: Architecture, nbytes: int) -> tuple[tuple[float, str], ...]:
    """The factors of one vocab x hidden matrix (the embedding, the output projection)."""
    return ((arch.vocab_size, "vocab"), (arch.hidden_size, "hidden"), (nbytes, "B"))


def summed(label: str, parts: Iterable[Part], note: str = "") -> Part:
    """Parts of ``numel x bytes`` with the same element size, as one."""
    parts = list(parts)
    nbytes = parts[0].factors[1][0] if parts else 0
    return Part(
        label,
        sum(p.value for p in parts),
        ((sum(p.factors[0][0] for p in parts), "trainable"), (nbytes, "B")),
        note,
    )


def named(part: Part, label: str) -> Part:
    """``part`` under another label."""
    return replace(part, label=label)


class MomentKind(Enum):
    """The moments of the step, in the order a step meets them. Block moments belong to one
    block (:attr:`Moment.block`); the value is the moment's name, with the block index filled
    in for those."""

    BLOCK_ALL_GATHER = "forward-block-{block}-all-gather"
    """Block ``i``'s forward all-gather under FSDP: its parameters copied out of the all-gather
    output while the previous unit's output is still referenced."""
    FORWARD = "forward"
    LOSS_BACKWARD = "loss-backward"
    HEAD_BACKWARD = "head-backward"
    BLOCK_BACKWARD = "backward-block-{block}"
    """Block ``i``'s MLP backward: what it saved still alive, its own gradients not yet."""
    BLOCK_BACKWARD_END = "backward-block-{block}-end"
    """The end of block ``i``'s backward under FSDP: its gradients whole, what it saved gone."""
    BACKWARD_END = "backward-end"
    OPTIMIZER = "optimizer"


@dataclass(frozen=True)
class Moment:
    """One moment of the step: each term (:data:`TERMS`) as the parts it sums."""

    kind: MomentKind
    block: int | None = None
    parameters: tuple[Part, ...] = ()
    gradients: tuple[Part, ...] = ()
    optimizer_states: tuple[Part, ...] = ()
    activations: tuple[Part, ...] = ()
    temporaries: tuple[Part, ...] = ()

    @property
    def name(self) -> str:
        """The moment's name as ``--explain`` and the golden files know it."""
        return self.kind.value.format(block=self.block)

    def parts(self, term: str) -> tuple[Part, ...]:
        """The parts of ``term`` (one of :data:`TERMS`)."""
        return getattr(self, term)

    @property
    def breakdown(self) -> Breakdown:
        return Breakdown(*(sum(p.value for p in self.parts(t)) for t in TERMS))


def moment(kind: MomentKind, block: int | None, *terms: Parts) -> Moment:
    """A :class:`Moment` from its terms in :data:`TERMS` order."""
    return Moment(kind, block, *(tuple(t) for t in terms))


@dataclass(frozen=True)
class Step:
    """Every moment of the steady-state step the model considers, in order."""

    moments: tuple[Moment, ...]
    trainable_parameters: int
    total_parameters: int

    @property
    def peak(self) -> Moment:
        """The largest moment (the first of equal ones): its breakdown is the estimate's."""
        return max(self.moments, key=lambda m: m.breakdown.total)
