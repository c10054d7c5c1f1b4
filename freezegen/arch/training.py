"""What trains under a whole spec: the freeze plan made adapter- and quantization-aware.

The one place lint, the estimators and the generator learn what a spec trains:

- Without an adapter the ``freeze`` section decides (:func:`~freezegen.arch.freeze.plan_freeze`).
- With an adapter the whole base is frozen except the parameters ``adapter.train`` names, and
  the adapters train (:mod:`freezegen.arch.adapters`); the static freeze keys have no effect
  (FG119 says so), ``freeze.schedule`` can still thaw base parameters later.
- ``quantization`` stores *the frozen base linears* in 4 or 8 bits: the weight of every block
  linear (:mod:`freezegen.arch.linears`) that is frozen at step 0. Linears that train at step 0
  (named by ``adapter.train``, or left trainable by the freeze section) and every linear
  outside the blocks (the output head, tied or not, and the classifier, which transformers
  keeps in full precision too, and BERT's head transform and pooler) keep their dtype;
  biases are never quantized. The generated script passes :func:`unquantized_linears` as
  ``BitsAndBytesConfig(llm_int8_skip_modules=...)``, which replaces transformers' default
  skips (tests/arch/test_training.py checks the modules bitsandbytes then converts). A
  quantized weight can never train: a schedule step thawing one is FG117.
"""

from __future__ import annotations

from freezegen.arch.adapters import plan_adapter
from freezegen.arch.families import family_of
from freezegen.arch.family import CAUSAL_LM
from freezegen.arch.freeze import FreezePlan, blocks_without, plan_freeze
from freezegen.arch.linears import linears
from freezegen.arch.params import Param
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture


def quantizes(spec: Spec) -> bool:
    """Whether ``spec`` stores frozen base weights quantized (``weights: none`` does not)."""
    return spec.quantization is not None and spec.quantization.weights != "none"


def plan_training(spec: Spec, arch: Architecture, params: list[Param]) -> FreezePlan:
    """Return what trains at step 0 under ``spec`` for a model of ``arch`` whose parameter
    table is ``params``: frozen base parameters, adapters, quantized weights, and every
    selector that missed (the freeze section's in ``misses``, the adapter's in
    ``adapter.misses``)."""
    family = family_of(arch)
    plan = plan_freeze(spec.freeze, params, arch.num_layers)
    adapter = None
    frozen = plan.frozen
    if spec.adapter is not None:
        adapter = plan_adapter(spec.adapter, family, params, arch.num_layers)
        frozen = frozenset(p.name for p in params) - adapter.train
    quantized = frozenset(
        lin.weight
        for lin in linears(family, params)
        if quantizes(spec) and lin.block is not None and lin.weight in frozen
    )
    trained = adapter.params if adapter is not None else ()
    return FreezePlan(
        params,
        frozen,
        blocks_without(params, frozen, trained),
        plan.misses,
        plan.out_of_range,
        adapter,
        quantized,
    )


def unquantized_linears(plan: FreezePlan, arch: Architecture, head: str) -> list[str]:
    """Return the sorted names of the linears whose weight ``plan`` keeps unquantized (for a
    causal-LM ``head``, the output projection too, tied or not): what the generated script
    passes as ``llm_int8_skip_modules`` so that bitsandbytes converts exactly the planned
    ones."""
    family = family_of(arch)
    kept = {lin.name for lin in linears(family, plan.params) if lin.weight not in plan.quantized}
    if head == CAUSAL_LM:
        kept.add(family.output_head)
    return sorted(kept)
