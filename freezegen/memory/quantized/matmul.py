"""What a quantized frozen linear's matmul allocates in forward and backward, and keeps between.

For one linear of shape (out, in) and one micro-batch of ``tokens`` rows, read from the
libraries' source (bitsandbytes 0.50 ``autograd/_functions.py``, ``backends/{cuda,cpu,default}``;
torchao 0.18 ``Int8Tensor``'s ``aten.linear``). The estimate predicts
``torch.cuda.max_memory_allocated``, so the CUDA path is the model; where the CPU path differs
(the tests measure the CPU path) ``backend="cpu"`` says how:

* bitsandbytes 4-bit (``MatMul4Bit``): the forward dequantizes the whole weight to the compute
  dtype and runs ``F.linear`` (the CUDA ``gemm_4bit`` does so for more than 1,536 rows on every
  GPU; for fewer, a fused kernel may skip the copy on some architectures: the model is the
  upper bound there). With double quantization the block scales are decoded to fp32 first;
  CUDA keeps the decoded scales and the scales plus offset both alive until the matmul ends,
  the CPU path frees the first at once. It saves nothing new (the packed weight only) and not
  the input. The backward dequantizes the weight again, in the dtype the model was loaded in,
  casts it to the gradient's dtype if that differs, and multiplies. An input in another dtype
  than the compute dtype (fp32 after peft's k-bit preparation) is cast to it for the matmul
  and the output cast back, their gradients likewise.
* bitsandbytes int8 (``MatMul8bitLt`` on CUDA): the input is cast to fp16, quantized row-wise
  to int8 (with the outlier threshold, ``|x|`` and a bool mask of the input's size exist for a
  moment), multiplied as int8 into int32, dequantized to fp16 and cast to the input's dtype.
  Whenever the input needs a gradient it keeps the input alive (``ctx.tensors``), though its
  backward never reads it. Input columns holding an outlier (data dependent) would add a saved
  copy of those columns and a few (out, columns) temporaries; the model assumes none. On CPU,
  training runs ``MatMul8bitFp`` instead: it dequantizes the weight and runs ``F.linear``.
  The backward is the same on both: the weight dequantized to the input's dtype, then the
  input's gradient.
* torchao int8 weight-only (``Int8Tensor``'s ``F.linear``, the same on CPU and CUDA): the
  int8 weight is cast to the input's dtype and multiplied, the per-row scale (fp32) cast to
  the product's dtype and applied after, the result cast back to the input's dtype. Under
  autocast (``compute`` other than the input's dtype) ``mm`` casts the input and that weight
  again, to ``compute``, while the input-dtype weight still lives. Autograd records the
  ``mm`` and the ``mul``, so when the input needs a gradient the weight in ``compute`` and the
  cast scale stay saved until this layer's backward: in training, a torchao int8 layer holds
  its weight in int8 *and* in the compute dtype from its forward to its backward. A bias is
  added in place to a view of the product, whose backward (autograd's in-place-on-view
  bookkeeping) allocates a few output-sized temporaries the model leaves out: it lists the
  bias-less linears of the llama-like families.

Pure Python (lint may import it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from freezegen.memory.quantized.storage import Allocation, LinearFormat, allocated, blocks

Backend = Literal["cuda", "cpu"]


@dataclass(frozen=True)
class MatmulMemory:
    """One quantized linear's matmul on one micro-batch.

    ``forward`` and ``backward`` are the moments that can set the call's peak, each the tensors
    the layer holds then beyond its storage, its input and the incoming gradient: the
    backward's moments list the saved tensors still alive (autograd frees a node's saved
    tensors as soon as the node has run). The forward's last tensor is the output, the
    backward's last the input's gradient. ``saved``: new tensors kept from the forward for the
    backward; ``saves_input``: whether the input is kept alive until then too.
    """

    forward: tuple[tuple[Allocation, ...], ...]
    saved: tuple[Allocation, ...]
    saves_input: bool
    backward: tuple[tuple[Allocation, ...], ...]

    @property
    def output(self) -> Allocation:
        """The layer's output (in the input's dtype)."""
        return self.forward[-1][-1]

    @property
    def forward_peak(self) -> int:
        """The most the forward holds at once beyond what existed before it (allocator bytes)."""
        return max(allocated(m) for m in self.forward)

    @property
    def backward_peak(self) -> int:
        """The most the backward holds at once, saved tensors included; 0 when the input needs
        no gradient (no backward runs)."""
        return max((allocated(m) for m in self.backward), default=0)

    @property
    def input_gradient(self) -> Allocation | None:
        """The input's gradient the backward returns; None when no backward runs."""
        return self.backward[-1][-1] if self.backward else None


def matmul_memory(
    out: int,
    inp: int,
    tokens: int,
    fmt: LinearFormat,
    *,
    input_grad: bool = True,
    input_dtype: str | None = None,
    weight_dtype: str | None = None,
    backend: Backend = "cuda",
) -> MatmulMemory:
    """Return what one (out, in) linear stored as ``fmt`` allocates for ``tokens`` rows.

    ``input_grad``: whether the input needs a gradient (an adapter or a trainable layer lies
    below); without, nothing is saved and no backward runs. ``input_dtype``: the input's dtype
    (default ``fmt.compute``): a 4-bit layer casts it to ``fmt.compute`` and its output back
    (peft's k-bit preparation makes the residual stream fp32); bitsandbytes int8 computes in
    it, so there it must be ``fmt.compute``; torchao's ``compute`` is autocast's dtype (the
    input's without autocast). ``weight_dtype``: the dtype the model was loaded in
    (a 4-bit backward dequantizes to it; default ``fmt.compute``). ``backend``: "cuda" (what
    the estimate predicts) or "cpu" (what the tests measure). Raises ValueError for a
    bitsandbytes int8 format whose input dtype is not its compute dtype.
    """
    dtype = input_dtype or fmt.compute
    if fmt.library == "bitsandbytes" and not fmt.four_bit and dtype != fmt.compute:
        raise ValueError(f"an int8 layer computes in its input's dtype: set compute={dtype}")
    y = Allocation("output", dtype, tokens * out, f"the output, in {dtype}")
    grad = Allocation("input gradient", dtype, tokens * inp, f"the input's gradient, in {dtype}")
    if fmt.four_bit:
        memory = _four_bit(out, inp, tokens, fmt, y, grad, weight_dtype or fmt.compute, backend)
    elif fmt.library == "torchao":
        memory = _torchao_int8(out, inp, tokens, fmt.compute, y, grad, input_grad)
    else:
        memory = _bnb_int8(out, inp, tokens, fmt, y, grad, backend)
    if input_grad:
        return memory
    # Nothing needs a gradient: autograd keeps nothing and no backward runs.
    return MatmulMemory(memory.forward, (), False, ())


def _dequantized(out: int, inp: int, dtype: str, when: str) -> Allocation:
    return Allocation(
        f"dequantized weight ({when})",
        dtype,
        out * inp,
        f"the whole weight decoded to {dtype} for the {when} matmul, freed after it",
    )


def _four_bit(
    out: int,
    inp: int,
    tokens: int,
    fmt: LinearFormat,
    y: Allocation,
    grad: Allocation,
    weight_dtype: str,
    backend: Backend,
) -> MatmulMemory:
    compute = fmt.compute
    nblocks = blocks(out * inp, fmt.blocksize)
    scales: tuple[Allocation, ...] = ()
    if fmt.double_quant:
        decoded = Allocation(
            "decoded block scales", "float32", nblocks, "the 8-bit block scales decoded to fp32"
        )
        shifted = Allocation(
            "block scales + offset",
            "float32",
            nblocks,
            "the decoded scales plus their offset, a new fp32 tensor",
        )
        # CUDA's fallback keeps both until it returns; the CPU path frees the decoded ones
        # as soon as the sum exists.
        scales = (decoded, shifted) if backend == "cuda" else (shifted,)
    fwd_weight = _dequantized(out, inp, compute, "forward")
    bwd_weight = _dequantized(out, inp, weight_dtype, "backward")
    cast_in = cast_out = ()
    y_compute, grad_compute = y, grad
    if y.dtype != compute:
        # Linear4bit.forward: x.to(compute) lives until it returns; the output is cast back.
        # Their backward casts the gradient to compute and the input's gradient back.
        y_compute = Allocation("output", compute, y.numel, f"the output, in {compute}")
        grad_compute = Allocation(
            "input gradient", compute, grad.numel, f"the input's gradient, in {compute}"
        )
        cast_in = (Allocation("input cast", compute, tokens * inp, f"the input cast to {compute}"),)
        cast_out = (
            Allocation("output gradient cast", compute, y.numel, f"the gradient cast to {compute}"),
        )
    forward = ((*cast_in, *scales, fwd_weight, y_compute),)
    if cast_in:
        forward += ((*cast_in, y_compute, y),)
    moments: list[tuple[Allocation, ...]] = []
    if fmt.double_quant:
        # dequantize_4bit decodes the scales (in place + offset) and frees them on return.
        moments.append((*cast_out, scales[-1], bwd_weight))
    weight = bwd_weight
    if weight_dtype != compute:
        weight = Allocation(
            "dequantized weight, cast",
            compute,
            out * inp,
            f"the backward's dequantized weight cast from {weight_dtype} to {compute}",
        )
        moments.append((*cast_out, bwd_weight, weight))
    moments.append((*cast_out, weight, grad_compute))
    if cast_out:
        moments.append((grad_compute, grad))
    return MatmulMemory(forward, (), False, tuple(moments))


def _bnb_int8(
    out: int,
    inp: int,
    tokens: int,
    fmt: LinearFormat,
    y: Allocation,
    grad: Allocation,
    backend: Backend,
) -> MatmulMemory:
    compute = fmt.compute
    weight = Allocation(
        "dequantized weight",
        compute,
        out * inp,
        f"the int8 weight cast to {compute} and scaled row by row",
    )
    row_scale = Allocation(
        "row scales / 127", "float32", out, "SCB / 127, the per-row factor (fp32)"
    )
    backward = ((weight, row_scale), (weight, grad))
    if backend == "cpu":
        # MatMul8bitFp: dequantize, then F.linear.
        return MatmulMemory(((weight, row_scale), (weight, y)), (), True, backward)
    n_in = tokens * inp
    cast: tuple[Allocation, ...] = ()
    if compute != "float16":
        cast = (Allocation("fp16 input", "float16", n_in, "the input cast to fp16 to quantize"),)
    quantized = (
        Allocation("int8 input", "int8", n_in, "the input quantized row-wise to int8"),
        Allocation("input row scales", "float32", tokens, "one fp32 absmax per input row"),
    )
    outliers: tuple[Allocation, ...] = ()
    if fmt.threshold > 0:
        outliers = (
            Allocation("|input|", "float16", n_in, "the fp16 input's absolute values"),
            Allocation("outlier mask", "bool", n_in, f"|input| >= {fmt.threshold}"),
        )
    # int8_mm_dequant writes fp16 and casts to the input's dtype while the int32 result lives.
    products: tuple[Allocation, ...] = (
        Allocation("int32 products", "int32", tokens * out, "the int8 matmul's int32 result"),
    )
    if compute != "float16":
        products += (
            Allocation("fp16 output", "float16", tokens * out, "the products dequantized"),
        )
    products += (y,)
    forward = ((*cast, *quantized, *outliers), (*quantized, *products))
    return MatmulMemory(forward, (), True, backward)


def _torchao_int8(
    out: int,
    inp: int,
    tokens: int,
    compute: str,
    y: Allocation,
    grad: Allocation,
    input_grad: bool,
) -> MatmulMemory:
    dtype = y.dtype  # the input's
    cast = compute != dtype  # autocast
    weight = Allocation(
        "dequantized weight",
        dtype,
        inp * out,
        f"the int8 weight cast to the input's dtype ({dtype}) for mm"
        + ("" if cast else " (autograd keeps it for the backward)"),
    )
    product = Allocation("unscaled output", compute, y.numel, "the mm result before the row scales")
    scaled = Allocation("scaled output", compute, y.numel, f"the output, in {compute}")
    scaled_grad = Allocation(
        "scaled output gradient", compute, y.numel, "the gradient times the row scales"
    )
    if not cast:
        # The scales are fp32: in an fp32 layer .to() is a no-op and mul keeps the layer's own.
        scale: tuple[Allocation, ...] = ()
        if compute != "float32":
            scale = (
                Allocation(
                    "row scales",
                    compute,
                    out,
                    f"the fp32 scales cast to {compute} (mul keeps them)",
                ),
            )
        if not input_grad:
            # Nothing records the mm: the cast weight dies with it, before the scales exist.
            return MatmulMemory(((weight, product), (product, *scale, y)), (), False, ())
        # mul's backward runs first and releases the scales; mm's then reads the weight.
        backward = ((weight, *scale, scaled_grad), (weight, scaled_grad, grad))
        return MatmulMemory(((weight, product, *scale, y),), (weight, *scale), False, backward)
    # Under autocast mm casts the input and the weight again, to compute; the result is cast
    # back to the input's dtype while the product (a local of torchao's linear) still lives.
    held = Allocation(
        "dequantized weight",
        compute,
        inp * out,
        f"the {dtype} weight cast to {compute} by autocast (autograd keeps it for the backward)",
    )
    x_cast = Allocation("input cast", compute, tokens * inp, f"the input cast to {compute}")
    scale = Allocation(
        "row scales", compute, out, f"the fp32 scales cast to {compute} (mul keeps them)"
    )
    forward = ((weight, x_cast, held, product), (held, product, scale, scaled, y))
    if not input_grad:
        return MatmulMemory(forward, (), False, ())
    grad_cast = Allocation(
        "output gradient cast", compute, y.numel, f"the gradient cast to {compute}"
    )
    grad_compute = Allocation(
        "input gradient", compute, grad.numel, f"the input's gradient, in {compute}"
    )
    backward = (
        (held, scale, grad_cast, scaled_grad),
        (held, scaled_grad, grad_compute),
        (grad_compute, grad),
    )
    return MatmulMemory(forward, (held, scale), False, backward)


__all__ = ["Backend", "MatmulMemory", "matmul_memory"]
