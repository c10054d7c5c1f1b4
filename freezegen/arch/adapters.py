"""Which linears a spec's ``adapter`` section adapts, the parameters peft adds, and what missed.

The rule is :func:`freezegen.runtime.adapters.adapter_targets`', stated over a family's
parameter table so that lint needs no torch: only linears (:mod:`freezegen.arch.linears`) inside
the selected blocks (``layers``, default every block); a target that is a kind (a key of the
family's ``modules``: "attention", "mlp") names the linears of that kind, any other target the
linears whose name ends with it at a dot boundary, and "all-linear" every linear in the blocks.
tests/arch/test_adapters.py proves both forms agree for every family, and that
:attr:`AdapterPlan.params` are what peft really creates.

Adapter parameters are named as ``named_parameters()`` of the model ``get_peft_model`` returns
(peft 0.21) names them: ``base_model.model.<module>.lora_A.default.weight`` of shape
(r, in_features) and ``base_model.model.<module>.lora_B.default.weight`` of shape
(out_features, r), without biases. Base parameters keep the names of the model before peft
wraps it (peft renames an adapted linear's own weight ``<module>.base_layer.weight``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from freezegen.arch.family import Family
from freezegen.arch.freeze import Miss
from freezegen.arch.linears import Linear, linears
from freezegen.arch.params import Param
from freezegen.runtime.names import ALL_LINEAR, name_matches
from freezegen.spec.models import AdapterSpec
from freezegen.spec.selectors import runtime_selection

PEFT_PREFIX = "base_model.model."
ADAPTER_NAME = "default"


def lora_parameters(linear: Linear, r: int) -> tuple[Param, Param]:
    """Return the two parameters peft adds beside ``linear`` for a rank-``r`` LoRA adapter:
    lora_A (r, in) then lora_B (out, r), of the linear's kind and block."""
    stem = f"{PEFT_PREFIX}{linear.name}"
    return (
        Param(
            f"{stem}.lora_A.{ADAPTER_NAME}.weight",
            (r, linear.in_features),
            linear.kind,
            linear.block,
        ),
        Param(
            f"{stem}.lora_B.{ADAPTER_NAME}.weight",
            (linear.out_features, r),
            linear.kind,
            linear.block,
        ),
    )


@dataclass(frozen=True)
class AdapterPlan:
    """The resolved adapter section of a spec, against a model's parameter table."""

    linears: tuple[Linear, ...]
    """The adapted linears, in model order."""
    params: tuple[Param, ...]
    """The adapter parameters peft creates (lora_A, lora_B per adapted linear, in order)."""
    train: frozenset[str]
    """Base parameters ``adapter.train`` names: they train fully beside the adapters."""
    blocks: tuple[int, ...]
    """The blocks ``layers`` selects (every block without it)."""
    misses: tuple[Miss, ...]
    """Targets, ``layers`` and ``train`` globs that select nothing."""

    @property
    def target_modules(self) -> list[str]:
        """The sorted module names for peft's ``LoraConfig(target_modules=...)``: what
        :func:`freezegen.runtime.adapters.adapter_targets` returns on the built model."""
        return sorted(linear.name for linear in self.linears)


def is_kind_target(target: str, family: Family) -> bool:
    """Whether an adapter target names a kind of ``family`` (else it is a module name)."""
    return target in family.modules


def plan_adapter(
    adapter: AdapterSpec, family: Family, params: list[Param], num_layers: int
) -> AdapterPlan:
    """Resolve ``adapter`` against the parameter table ``params`` of a ``family`` model of
    ``num_layers`` blocks; selectors that select nothing are recorded, not raised."""
    blocks = range(num_layers) if adapter.layers is None else adapter.indices(num_layers)
    selected = set(blocks)
    in_blocks = [lin for lin in linears(family, params) if lin.block in selected]
    misses: list[Miss] = []
    if not blocks:
        misses.append(Miss(("adapter", "layers"), "layers selects no block"))
    if adapter.targets == ALL_LINEAR:
        adapted = in_blocks
    else:
        hits = [
            [
                lin
                for lin in in_blocks
                if (lin.kind == t if is_kind_target(t, family) else name_matches(lin.name, t))
            ]
            for t in adapter.targets
        ]
        chosen = {lin.name for hit in hits for lin in hit}
        adapted = [lin for lin in in_blocks if lin.name in chosen]
        if blocks:
            misses += [
                Miss(("adapter", "targets", i), _target_miss(target, family))
                for i, (target, hit) in enumerate(zip(adapter.targets, hits, strict=True))
                if not hit
            ]
    train: set[str] = set()
    for i, pattern in enumerate(adapter.train):
        hit = {p.name for p in params if fnmatchcase(p.name, pattern)}
        if not hit:
            misses.append(
                Miss(("adapter", "train", i), f"pattern {pattern!r} matches no parameter")
            )
        train |= hit
    added = tuple(p for lin in adapted for p in lora_parameters(lin, adapter.r))
    return AdapterPlan(tuple(adapted), added, frozenset(train), tuple(blocks), tuple(misses))


def _target_miss(target: str, family: Family) -> str:
    if is_kind_target(target, family):
        return f"no linear of kind {target!r} in the selected blocks"
    return f"{target!r} matches no linear in the selected blocks"


def adapter_rules(adapter: AdapterSpec, depth: int | None) -> dict[str, Any]:
    """Return ``adapter`` as the data :func:`freezegen.runtime.adapters.adapter_targets` takes,
    for a model of ``depth`` blocks (None: known only once the model is built): ``targets`` as
    written, ``blocks`` None for every block."""
    targets = adapter.targets if adapter.targets == ALL_LINEAR else list(adapter.targets)
    blocks = None if adapter.layers is None else runtime_selection(adapter, depth)
    return {"targets": targets, "blocks": blocks}
