"""The traced estimator's adapter and quantized-base run: the model the generated script trains.

After the base is built (in fp32, as the generated script loads a quantized base) and frozen,
:func:`adapt` stores the planned frozen linears quantized (:mod:`freezegen.memory.emulated`:
bitsandbytes' 4-bit and int8 layers emulated at their true storage) and attaches peft's LoRA
adapters to the linears the plan names (``get_peft_model`` with ``target_modules``; peft
freezes the base), then lets the base parameters ``adapter.train`` names train again. What is
quantized and adapted comes from :func:`freezegen.arch.training.plan_training`, the plan lint
and the analytic estimator use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from freezegen.arch.families import family_of
from freezegen.arch.training import plan_training, quantizes
from freezegen.memory.emulated import quantize_linears
from freezegen.memory.quantized.storage import LinearFormat
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture


@contextlib.contextmanager
def _adapters_stay_where_created() -> Iterator[None]:
    """peft moves each new adapter (and each wrapped layer) to its base layer's device and
    floating dtype with ``Module.to``, which cannot swap fake parameters. The base is built on
    the CPU in fp32, where peft creates the adapters (fp32 nn.Linear), and a quantized base's
    payload has no floating dtype: every such move changes nothing, so ``Module.to`` returns
    the module as it is while peft attaches the adapters."""
    move = nn.Module.to
    nn.Module.to = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.to = move  # type: ignore[method-assign]


def adapt(model: nn.Module, spec: Spec, arch: Architecture) -> nn.Module:
    """Return ``model`` with its planned linears quantized and the spec's adapters attached
    (the peft model when the spec has an adapter, else ``model`` itself)."""
    family = family_of(arch)
    table = family.parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
    plan = plan_training(spec, arch, table)
    if quantizes(spec):
        assert spec.quantization is not None
        fmt = LinearFormat.of(spec.quantization)
        assert fmt is not None
        modules = {name.removesuffix(".weight") for name in plan.quantized}
        quantize_linears(model, modules, fmt, weight_dtype=torch.float32)
    if spec.adapter is None or plan.adapter is None:
        return model
    import peft

    trained = [p for name, p in model.named_parameters() if name in plan.adapter.train]
    config = peft.LoraConfig(
        r=spec.adapter.r,
        lora_alpha=spec.adapter.alpha,
        lora_dropout=spec.adapter.dropout,
        target_modules=plan.adapter.target_modules,
    )
    with _adapters_stay_where_created():
        model = peft.get_peft_model(model, config)
    for p in trained:
        p.requires_grad_(True)
    return model
