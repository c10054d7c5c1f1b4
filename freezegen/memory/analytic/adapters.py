"""The parameters of a run with LoRA adapters or a quantized frozen base, as ``--explain``
shows them.

The base keeps every parameter the plan does not quantize in the parameters' dtype (the
generated script loads a quantized base in fp32 and casts nothing else); each quantized linear
holds its format's tensors (:mod:`freezegen.memory.quantized`: payload, block scales, code
tables, its bias in the compute dtype), plus the once-per-process tables; peft creates each
adapter's lora_A (r x in) and lora_B (out x r) as ``nn.Linear`` layers in the base layer's
floating dtype (fp32 here: a quantized payload has none, and peft then keeps its default), so
they follow the parameters' dtype too. What trains (adapters, ``adapter.train``) is the plan's
``trainable``: gradients and optimizer states are counted from it as for any run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from freezegen.arch.families import family_of
from freezegen.arch.freeze import FreezePlan
from freezegen.arch.linears import linears
from freezegen.memory.analytic.parts import Part, each, rounded
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture

if TYPE_CHECKING:
    from freezegen.memory.quantized.storage import LinearFormat


def quantized_format(spec: Spec) -> LinearFormat | None:
    """The storage format of the spec's quantized base linears (None: not quantized). A
    bitsandbytes int8 layer computes in its input's dtype: its compute dtype is the fp32 of the
    residual stream (the generated script loads a quantized base in fp32), which its bias is
    cast to too. (An attention output projection under autocast reads the attention's 16-bit
    output and casts its bias to that: the model keeps those few biases in fp32.) A torchao
    layer's ``mm`` runs in autocast's dtype (fp32 without autocast)."""
    # memory.quantized builds on analytic.parts: imported here, not at the top, to break the
    # cycle through analytic/__init__.
    from freezegen.memory.quantized.storage import LinearFormat

    fmt = LinearFormat.of(spec.quantization) if spec.quantization is not None else None
    if fmt is not None and fmt.library == "torchao":
        return replace(fmt, compute=Precision(spec.precision).autocast_dtype or "float32")
    if fmt is not None and not fmt.four_bit:
        return replace(fmt, compute="float32")
    return fmt


def adapted_parameters(
    spec: Spec, arch: Architecture, plan: FreezePlan, precision: Precision
) -> list[Part]:
    """The parameters term's parts: the base's unquantized parameters, each quantized tensor
    kind (with the once-per-process ones), and the adapters."""
    pbytes = precision.param_bytes
    family = family_of(arch)
    quantized = {
        lin.name: lin for lin in linears(family, plan.params) if lin.weight in plan.quantized
    }
    biases = {f"{name}.bias" for name in quantized}
    kept = [p for p in plan.params if p.name not in plan.quantized and p.name not in biases]
    parts = [
        Part(
            "base parameters" if quantized else "",
            sum(rounded(p.numel * pbytes) for p in kept),
            each(sum(p.numel for p in kept), pbytes),
            precision.param_dtype,
        )
    ]
    fmt = quantized_format(spec)
    if quantized and fmt is not None:
        from freezegen.memory.quantized.storage import (
            SPEC_DTYPES,
            bias_storage,
            explained,
            linear_storage,
            shared_storage,
        )

        dtype = SPEC_DTYPES[precision.param_dtype]  # torchao leaves a bias in it

        tensors = []
        names = {p.name for p in plan.params}
        for name, lin in quantized.items():
            tensors += linear_storage(lin.out_features, lin.in_features, fmt)
            if f"{name}.bias" in names:
                tensors.append(bias_storage(lin.out_features, fmt, dtype))
        label = f"{len(quantized):,} {fmt.weights} linears:"
        parts += explained(tensors, label)
        parts += explained(shared_storage(fmt))
    if plan.adapter is not None and plan.adapter.params:
        adapters = plan.adapter.params
        parts.append(
            Part(
                f"LoRA adapters (lora_A, lora_B) beside {len(plan.adapter.linears):,} linears",
                sum(rounded(p.numel * pbytes) for p in adapters),
                each(sum(p.numel for p in adapters), pbytes),
                f"r={spec.adapter.r if spec.adapter else 0}, {precision.param_dtype}",
            )
        )
    return parts


def quantized_backward(
    spec: Spec, arch: Architecture, plan: FreezePlan, precision: Precision, tokens: int
) -> list[Part]:
    """What one block's backward holds beside its saved tensors at its largest quantized
    linear's backward: the residual stream's gradient, and that linear's dequantized weight
    (in the dtype the base was loaded in, fp32), its cast to the compute dtype and the input's
    gradient (:func:`freezegen.memory.quantized.matmul_memory`'s backward peak). With few
    tokens this, not the MLP's elementwise backward, is the block's peak."""
    from freezegen.memory.quantized.matmul import matmul_memory
    from freezegen.memory.quantized.storage import explained

    fmt = quantized_format(spec)
    assert fmt is not None
    family = family_of(arch)
    largest = max(
        (lin for lin in linears(family, plan.params) if lin.weight in plan.quantized),
        key=lambda lin: lin.out_features * lin.in_features,
    )
    # The input is the residual stream's dtype (fp32: the base is loaded in fp32) under
    # autocast too, where the quantized linears' outputs come back in it.
    memory = matmul_memory(
        largest.out_features,
        largest.in_features,
        tokens,
        fmt,
        input_dtype="float32",
        weight_dtype="float32",
    )
    # What the layer saved (torchao's weight copy) is the block's saved activations' already.
    moments = [[t for t in m if t not in memory.saved] for m in memory.backward]
    moment = max(moments, key=lambda tensors: sum(t.allocated for t in tensors))
    h = arch.hidden_size
    residual = Part(
        "residual gradient",
        rounded(tokens * h * precision.residual_bytes),
        ((tokens, "tokens"), (h, "hidden"), (precision.residual_bytes, "B")),
    )
    return [residual, *explained(moment, f"{largest.local_name}'s backward:")]
