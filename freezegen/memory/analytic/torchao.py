"""What a block's torchao int8 base linears keep for the backward.

torchao's int8 weight-only ``F.linear`` casts the int8 weight to the input's dtype and runs
``mm`` (under autocast, ``mm`` casts it again, to 16 bits), then multiplies by the row scales
cast to the product's dtype (:func:`freezegen.memory.quantized.matmul_memory`). Both are
plain autograd ops: when the linear's input needs a gradient, ``mm`` saves the weight in the
compute dtype and, under autocast, ``mul`` the cast scales, until the linear's backward. So a
torchao layer holds its weight twice in training, in int8 and in the compute dtype (a
bitsandbytes 4-bit layer dequantizes again in the backward instead). These are saved tensors:
activation checkpointing drops them with the rest of the block and its recomputation builds
them again. A linear whose input needs no gradient (the lowest recording block's) saves
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from freezegen.arch.families import family_of
from freezegen.arch.params import Param
from freezegen.memory.analytic.int8 import input_grads
from freezegen.memory.analytic.operators import Trains
from freezegen.memory.analytic.parts import rounded
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def torchao_saved(
    arch: Architecture,
    precision: Precision,
    weights: Iterable[Param],
    trains: Trains,
    *,
    input_grad: bool,
    quiet_attention: bool,
) -> tuple[int, int, int]:
    """Return (allocator bytes, weight elements, bytes per element) of what one block's
    quantized ``weights`` (its torchao int8 linears' weight parameters) save for the backward:
    each weight in the compute dtype, and under autocast each linear's row scales in it.
    ``input_grad`` and ``quiet_attention`` as for
    :func:`~freezegen.memory.analytic.int8.int8_inputs`."""
    ops = family_of(arch).block
    attention, out, mlp, down = input_grads(
        arch, trains, input_grad=input_grad, quiet_attention=quiet_attention
    )
    needs_grad = {name: attention for name in ops.attention_inputs}
    needs_grad[ops.out_projection] = out
    needs_grad.update({name: mlp for name in (*ops.mlp_inputs, ops.router or "")})
    needs_grad[ops.mlp_output] = down
    size = precision.matmul_bytes
    total = numel = 0
    for p in weights:
        module = p.name.partition(f".{p.block}.")[2].removesuffix(".weight")
        if not needs_grad.get(module, True):
            continue
        total += rounded(p.numel * size)
        numel += p.numel
        if precision.autocast:
            total += rounded(p.shape[0] * size)  # the row scales, cast for mul
    return total, numel, size
