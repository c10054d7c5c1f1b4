"""What a block's bitsandbytes int8 base linears keep alive for the backward, per token.

bitsandbytes' ``MatMul8bitLt`` keeps each input that needs a gradient in its autograd context
(``ctx.tensors``: :func:`freezegen.memory.quantized.matmul_memory`'s ``saves_input``), though
its backward never reads it. That is no saved tensor: the input lives as long as the graph's
nodes do, and activation checkpointing, which drops only saved tensors, does not drop it. So
an int8 block keeps the tensors its quantized linears read, once each (linears reading one
tensor share it): the attention's input (the norm's output, or the block input without a
pre-norm), the attention's output, the MLP's input and the down projection's input, each when
it needs a gradient. In a block that is not checkpointed, what the block saves anyway is not
counted twice: without autocast the linears' readers save those very tensors, and the
attention kernel saves its output.

The timeline frees them with their block, at its backward, where bitsandbytes frees them only
with the graph, after the whole backward: below the top block each backward holds the kept
inputs of the blocks above. The step's peak is not moved by that while it lies at the loss or
the top block's backward (where all of them exist anyway), as in every accuracy case; a run
whose peak falls in a lower block's backward would hold more than the model says.
"""

from __future__ import annotations

from freezegen.arch.families import family_of
from freezegen.memory.analytic.operators import (
    Trains,
    activation_output_bytes,
    attention_keeps_probabilities,
    linear_output_bytes,
)
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def input_grads(
    arch: Architecture, trains: Trains, *, input_grad: bool, quiet_attention: bool
) -> tuple[bool, bool, bool, bool]:
    """Return whether the inputs of a block's linears need a gradient, by role: the attention's
    input projections, its output projection, the MLP's input projections (or router), the
    MLP's output projection. ``input_grad`` and ``quiet_attention`` as for
    :func:`int8_inputs`."""
    ops = family_of(arch).block

    def trained(*modules: str) -> bool:
        return any(trains(m) or trains.adapted(m) for m in modules)

    pre_norm = ops.attention_norm is not None and not ops.post_norm
    attention_grad = not quiet_attention and (
        input_grad or (pre_norm and trains(ops.attention_norm or ""))
    )
    out_grad = not quiet_attention and (attention_grad or trained(*ops.attention_inputs))
    mlp_grad = not quiet_attention or (ops.mlp_norm is not None and trains(ops.mlp_norm))
    down_grad = mlp_grad or trained(*ops.mlp_inputs)
    return attention_grad, out_grad, mlp_grad, down_grad


def int8_inputs(
    spec: Spec,
    arch: Architecture,
    precision: Precision,
    trains: Trains,
    *,
    input_grad: bool,
    quiet_attention: bool,
    checkpointed: bool,
) -> float:
    """Return the bytes per token a block's int8 linears keep beyond what it saves anyway (all
    of them when ``checkpointed``: checkpointing saves nothing else).

    ``input_grad``: whether the block's input needs a gradient (not for the lowest recording
    block when the embeddings are frozen); ``quiet_attention``: autograd starts at the MLP
    (:func:`~freezegen.memory.analytic.operators.block_per_token`)."""
    ops = family_of(arch).block
    h, f, q = arch.hidden_size, arch.intermediate_size, arch.attention_width
    residual, mm = precision.residual_bytes, precision.matmul_bytes

    def quantized(*modules: str) -> bool:
        # In a quantized block every frozen linear is stored quantized (arch/training.py).
        return any(not trains(m) for m in modules)

    def saved_anyway(*modules: str) -> bool:
        # Without autocast the readers save the tensor itself; under autocast a cast of it.
        return not checkpointed and not precision.autocast and trains.readers(*modules) > 0

    grads = input_grads(arch, trains, input_grad=input_grad, quiet_attention=quiet_attention)
    attention_grad, out_grad, mlp_grad, down_grad = grads
    mlp_inputs = (ops.router,) if ops.router else ops.mlp_inputs
    kept = 0.0
    attention_inputs = ops.attention_inputs
    if attention_grad and quantized(*attention_inputs) and not saved_anyway(*attention_inputs):
        kept += residual * h
    if out_grad and quantized(ops.out_projection):
        kernel_saves = not attention_keeps_probabilities(spec, arch, precision)
        if checkpointed or not (kernel_saves or trains.reads(ops.out_projection)):
            kept += mm * q
    if mlp_grad and quantized(*mlp_inputs) and not saved_anyway(*mlp_inputs):
        kept += residual * h
    down = ops.mlp_output
    if not ops.router and down_grad and quantized(down) and not saved_anyway(down):
        # The nonlinearity's output, in its dtype: fp32 under autocast, where the quantized
        # gate/up outputs come back in the residual stream's dtype.
        width = max(
            activation_output_bytes(precision, ops.activation),
            linear_output_bytes(precision, trains.quantized),
        )
        kept += width * f
    return kept
