"""Which parameters a spec's ``freeze`` section freezes, and which of its selectors miss.

The order is the contract of docs/architecture.md ("Freeze order"): embeddings, then the
selected blocks (narrowed to ``modules``), then ``patterns``; ``except`` is applied last and
always wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from freezegen.arch.params import EMBEDDINGS, Param
from freezegen.spec.models import FreezeSpec, UnfreezeTarget
from freezegen.spec.selectors import out_of_range, runtime_selection

if TYPE_CHECKING:
    from freezegen.arch.adapters import AdapterPlan


@dataclass(frozen=True)
class Miss:
    """A selector that selects nothing: where it is in the spec and why."""

    loc: tuple[str | int, ...]
    reason: str


@dataclass
class Selection:
    names: set[str] = field(default_factory=set)
    blocks: list[int] = field(default_factory=list)
    misses: list[Miss] = field(default_factory=list)
    out_of_range: list[int] = field(default_factory=list)


@dataclass
class FreezePlan:
    """The frozen parameter names of a model under a spec, with every selector that missed.

    :func:`plan_freeze` resolves a freeze section alone; :func:`freezegen.arch.training.
    plan_training` resolves a whole spec, adapters and quantized storage included, and is what
    lint (and every consumer that has a spec) uses.
    """

    params: list[Param]
    """The base model's parameter table."""
    frozen: frozenset[str]
    """Base parameters frozen at step 0 (with an adapter: all but ``adapter.train``)."""
    frozen_blocks: frozenset[int]
    """Blocks in which nothing trains at step 0: no base parameter and no adapter."""
    misses: list[Miss]
    out_of_range: list[tuple[tuple[str | int, ...], list[int]]]
    adapter: AdapterPlan | None = None
    """The adapters trained beside the base, when the spec has an adapter section."""
    quantized: frozenset[str] = frozenset()
    """Base weights stored quantized (never trainable): see freezegen.arch.training."""

    @property
    def trainable(self) -> list[Param]:
        """What trains at step 0: the base parameters not frozen, then the adapters' (named
        as peft names them)."""
        base = [p for p in self.params if p.name not in self.frozen]
        return base + list(self.adapter.params if self.adapter is not None else ())

    @property
    def first_trainable_block(self) -> int | None:
        """Lowest block holding a trainable parameter (None when no block trains)."""
        blocks = [p.block for p in self.trainable if p.block is not None]
        return min(blocks) if blocks else None


def select(
    target: FreezeSpec | UnfreezeTarget,
    params: list[Param],
    num_layers: int,
    loc: tuple[str | int, ...],
) -> Selection:
    """Return the parameter names ``target`` selects (before ``except``) and what missed."""
    sel = Selection()
    if target.embeddings:
        sel.names |= {p.name for p in params if p.kind == EMBEDDINGS}
    if target.layers is not None:
        sel.blocks = target.indices(num_layers)
        sel.out_of_range = out_of_range(target.layers, num_layers)
        chosen = set(sel.blocks)
        kinds = set(target.modules) if target.modules else None
        sel.names |= {
            p.name for p in params if p.block in chosen and (kinds is None or p.kind in kinds)
        }
    for i, pattern in enumerate(target.patterns):
        hit = {p.name for p in params if fnmatchcase(p.name, pattern)}
        if not hit:
            sel.misses.append(
                Miss((*loc, "patterns", i), f"pattern {pattern!r} matches no parameter")
            )
        sel.names |= hit
    return sel


def plan_freeze(freeze: FreezeSpec, params: list[Param], num_layers: int) -> FreezePlan:
    """Resolve ``freeze`` against ``params``; selectors that miss are recorded, not raised."""
    sel = select(freeze, params, num_layers, ("freeze",))
    misses = list(sel.misses)
    kept: set[str] = set()
    for i, pattern in enumerate(freeze.except_):
        hit = {p.name for p in params if fnmatchcase(p.name, pattern)}
        if not hit:
            misses.append(
                Miss(("freeze", "except", i), f"pattern {pattern!r} matches no parameter")
            )
        kept |= hit
    frozen = frozenset(sel.names - kept)
    out_of_range = [(("freeze", "layers"), sel.out_of_range)] if sel.out_of_range else []
    return FreezePlan(params, frozen, blocks_without(params, frozen), misses, out_of_range)


def blocks_without(
    params: list[Param], frozen: frozenset[str], trained: tuple[Param, ...] = ()
) -> frozenset[int]:
    """Return the blocks in which nothing trains: every parameter of ``params`` frozen and no
    parameter of ``trained`` (adapters) in the block."""
    busy = {p.block for p in params if p.name not in frozen} | {p.block for p in trained}
    return frozenset(p.block for p in params if p.block is not None and p.block not in busy)


def freeze_rules(target: FreezeSpec | UnfreezeTarget, depth: int | None) -> dict[str, Any]:
    """Return ``target`` as the data freezegen.runtime.freezing selects parameters by, for a
    model of ``depth`` blocks (None: known only once the model is built): what the traced
    estimator passes it and the generated script carries as FREEZE and UNFREEZE."""
    rules: dict[str, Any] = {
        "embeddings": target.embeddings,
        "blocks": [] if target.layers is None else runtime_selection(target, depth),
        "modules": None if target.modules is None else list(target.modules),
        "patterns": list(target.patterns),
    }
    if isinstance(target, FreezeSpec):
        rules["except"] = list(target.except_)
    return rules
