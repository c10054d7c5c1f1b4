"""Emulations of bitsandbytes' 4-bit and int8 linears and torchao's int8 weight-only linear for
the traced estimator.

THESE ARE EMULATIONS, not the libraries. ``bnb.nn.Linear4bit`` cannot run under
``FakeTensorMode``: quantizing calls the library's kernels on real data (``Params4bit``
quantizes when it moves to a device, and the fake tensors have no data), and its autograd
function dispatches to custom ops whose CPU kernels read the payload. The trace only needs what
the layer *holds* and what it *allocates*, so :class:`EmulatedLinear4bit` holds exactly the
tensors :func:`freezegen.memory.quantized.linear_storage` lists for the format (the packed
payload, the block scales, the code tables, the nested scales of double quantization; those
formulas are checked byte for byte against the tensors bitsandbytes allocates on CPU in
tests/memory/quantized/), and its forward and backward allocate what bitsandbytes' CUDA path
allocates, read from ``nn.Linear4bit.forward`` and ``autograd._functions.MatMul4Bit`` (0.50):

* forward: the input cast to the compute dtype; with double quantization the 8-bit block scales
  decoded to fp32 and their sum with the offset (both alive until the matmul ends); the whole
  weight dequantized to the compute dtype; ``F.linear``; everything freed but the output,
  which is cast back to the input's dtype. Nothing is saved for the backward (MatMul4Bit keeps
  the packed weight, which the layer holds anyway, and not the input);
* backward: the gradient cast to the compute dtype; the scales decoded again (one fp32 tensor);
  the weight dequantized to the dtype the model was loaded in (``quant_state.dtype``), cast to
  the gradient's dtype when it differs; the input's gradient; cast back.

:class:`EmulatedLinear8bit` does the same for ``bnb.nn.Linear8bitLt`` (LLM.int8), which cannot
run under fake tensors either (``Int8Params`` quantizes on the device move, and the int8 kernels
read data): it holds :func:`~freezegen.memory.quantized.linear_storage`'s int8 tensors (the int8
weight and its fp32 row scales) and allocates what ``autograd._functions.MatMul8bitLt`` (0.50)
allocates on CUDA, which :func:`freezegen.memory.quantized.matmul_memory` lists:

* forward, in the input's dtype (there is no compute dtype): the input cast to fp16, quantized
  row-wise to int8 with one fp32 scale per row; with an outlier threshold ``|input|`` and its
  bool mask alive at once with those; then the int32 products, their fp16 dequantization and its
  cast to the input's dtype (the output). No outlier columns are assumed (data dependent). The
  input is kept alive as bitsandbytes keeps it, in an attribute of the autograd context
  (``ctx.tensors``), not as a saved tensor: it lives as long as the graph's nodes do;
* backward: the int8 weight cast to the input's dtype and scaled by ``SCB / 127`` (an fp32
  (out,) factor), then the input's gradient.

:class:`EmulatedTorchaoInt8` stands for a linear whose weight is torchao's ``Int8Tensor``
(int8 weight-only), which the trace cannot build from fake tensors through ``quantize_``: it
holds :func:`~freezegen.memory.quantized.linear_storage`'s torchao tensors (int8 weight, fp32
row scale, int8 zero point) and runs the very aten ops of ``Int8Tensor``'s ``F.linear``
(torchao 0.18, per-row path): the int8 weight cast to the input's dtype, ``mm``, the scales cast
to the product's dtype and multiplied, the bias added in place, the result cast to the input's
dtype. Those are plain autograd ops, so what autograd saves and autocast casts is what it does
for the real layer.

The values are never computed (fake tensors have none): ``torch.empty`` stands for each decoded
tensor, which allocates what the real kernel's output allocates.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from freezegen.memory.quantized.storage import (
    LinearFormat,
    blocks,
    linear_storage,
    shared_storage,
)


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


class _MatMul4Bit(torch.autograd.Function):
    """bitsandbytes' ``MatMul4Bit`` as it allocates on CUDA (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, layer: EmulatedLinear4bit) -> torch.Tensor:
        ctx.layer = layer
        scales = layer.decoded_scales(both=True)  # alive until the matmul returns
        weight = torch.empty(layer.out_features, layer.in_features, dtype=x.dtype)
        out = F.linear(x, weight, layer.bias)
        del scales, weight
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        layer = ctx.layer
        scales = layer.decoded_scales(both=False)
        weight = torch.empty(layer.out_features, layer.in_features, dtype=layer.weight_dtype)
        del scales
        if weight.dtype != grad.dtype:
            weight = weight.to(grad.dtype)
        return grad @ weight, None


class EmulatedLinear4bit(nn.Linear):
    """A frozen (out, in) linear stored as ``fmt`` (nf4 / fp4), emulated for tracing.

    Its buffers are :func:`~freezegen.memory.quantized.linear_storage`'s tensors, its bias (if
    any) a frozen parameter in the compute dtype (bitsandbytes casts it to the input's dtype in
    the first forward). ``weight_dtype``: the dtype the model was loaded in, which the
    backward dequantizes to. It exposes ``in_features`` / ``out_features`` and a ``weight``
    (the payload) and is an ``nn.Linear`` (as ``bnb.nn.Linear4bit`` is), so that peft wraps it
    as it wraps one. peft wraps a real ``Linear4bit`` in its bnb variant, which also clones the
    base output (a transient of the output's size, never saved): the emulated run lacks that.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        fmt: LinearFormat,
        bias: bool,
        weight_dtype: torch.dtype,
    ) -> None:
        nn.Module.__init__(self)  # nn.Linear's would allocate a float weight
        if not fmt.four_bit:
            raise ValueError(f"not a 4-bit format: {fmt.weights}")
        self.in_features, self.out_features = in_features, out_features
        self.fmt = fmt
        self.weight_dtype = weight_dtype
        self.compute_dtype = _dtype(fmt.compute)
        self.nblocks = blocks(in_features * out_features, fmt.blocksize)
        for t in linear_storage(out_features, in_features, fmt):
            tensor = torch.empty(t.numel, dtype=_dtype(t.dtype))
            if t.name == "weight":
                self.weight = nn.Parameter(tensor, requires_grad=False)
            else:
                self.register_buffer(t.name.replace(".", "_"), tensor)
        self.bias = (
            nn.Parameter(torch.empty(out_features, dtype=self.compute_dtype), requires_grad=False)
            if bias
            else None
        )

    def decoded_scales(self, *, both: bool) -> tuple[torch.Tensor, ...]:
        """The fp32 block scales double quantization decodes before dequantizing: the decoded
        scales and their sum with the offset (``both``: the forward's CUDA fallback keeps the
        two), or the sum alone (the backward decodes in place); none without double
        quantization."""
        if not self.fmt.double_quant:
            return ()
        decoded = torch.empty(self.nblocks, dtype=torch.float32)
        shifted = decoded + 0.0
        return (decoded, shifted) if both else (shifted,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        out = _MatMul4Bit.apply(x.to(self.compute_dtype), self)
        return out.to(dtype)


class _MatMul8bitLt(torch.autograd.Function):
    """bitsandbytes' ``MatMul8bitLt`` as it allocates on CUDA (see the module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, layer: EmulatedLinear8bit) -> torch.Tensor:
        rows = x.reshape(-1, layer.in_features)
        half = rows.to(torch.float16)  # no copy for an fp16 input
        codes = torch.empty(rows.shape, dtype=torch.int8)
        scales = torch.empty(rows.shape[0], dtype=torch.float32)
        if layer.fmt.threshold > 0:
            # The outlier search: |input| and its mask exist with the quantized input.
            magnitude = half.abs()
            mask = magnitude >= layer.fmt.threshold
            del magnitude, mask
        del half
        products = torch.empty(rows.shape[0], layer.out_features, dtype=torch.int32)
        out = torch.empty(rows.shape[0], layer.out_features, dtype=torch.float16).to(x.dtype)
        if layer.bias is not None:
            out.add_(layer.bias)
        del codes, scales, products
        ctx.layer = layer
        ctx.input = rows  # MatMul8bitLt keeps its (reshaped) input in ctx.tensors, unread
        return out.view(*x.shape[:-1], layer.out_features)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        layer = ctx.layer
        dtype = ctx.input.dtype
        weight = torch.empty(layer.out_features, layer.in_features, dtype=dtype)
        weight.mul_(torch.empty(layer.out_features, 1, dtype=torch.float32))  # SCB / 127
        rows = grad.reshape(-1, layer.out_features).to(dtype)
        return (rows @ weight).view(*grad.shape[:-1], layer.in_features), None


class EmulatedLinear8bit(nn.Linear):
    """A frozen (out, in) linear stored as bitsandbytes int8 (LLM.int8), emulated for tracing.

    Its int8 weight (a frozen parameter) and fp32 row scales (``SCB``, a buffer) are
    :func:`~freezegen.memory.quantized.linear_storage`'s tensors; its bias (if any) a frozen
    parameter in ``weight_dtype`` (the dtype the model was loaded in), cast to the input's dtype
    by the first forward as ``Linear8bitLt.forward`` casts it. It is an ``nn.Linear`` (as
    ``bnb.nn.Linear8bitLt`` is) so that peft wraps it as it wraps one; ``fmt.threshold`` is
    the outlier threshold. Raises ValueError for a format that is not bitsandbytes int8.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        fmt: LinearFormat,
        bias: bool,
        weight_dtype: torch.dtype,
    ) -> None:
        nn.Module.__init__(self)  # nn.Linear's would allocate a float weight
        if fmt.weights != "int8" or fmt.library != "bitsandbytes":
            raise ValueError(f"not bitsandbytes int8: {fmt.library} {fmt.weights}")
        self.in_features, self.out_features = in_features, out_features
        self.fmt = fmt
        for t in linear_storage(out_features, in_features, fmt):
            tensor = torch.empty(t.numel, dtype=_dtype(t.dtype))
            if t.name == "weight":
                self.weight = nn.Parameter(tensor, requires_grad=False)
            else:
                self.register_buffer(t.name, tensor)
        self.bias = (
            nn.Parameter(torch.empty(out_features, dtype=weight_dtype), requires_grad=False)
            if bias
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None and self.bias.dtype != x.dtype:
            self.bias.data = self.bias.data.to(x.dtype)
        return _MatMul8bitLt.apply(x, self)


class EmulatedTorchaoInt8(nn.Linear):
    """A frozen (out, in) linear whose weight is torchao's int8 weight-only ``Int8Tensor``,
    emulated for tracing (see the module docstring).

    Its int8 weight is a frozen parameter (peft wraps the layer as it wraps an ``nn.Linear``,
    and creates its adapters in fp32: the payload has no floating dtype), its row scales and
    zero points buffers; its bias (if any) a frozen parameter in ``weight_dtype`` (the dtype the
    model was loaded in, which torchao leaves it in). Raises ValueError for a format that is not
    torchao's.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        fmt: LinearFormat,
        bias: bool,
        weight_dtype: torch.dtype,
    ) -> None:
        nn.Module.__init__(self)  # nn.Linear's would allocate a float weight
        if fmt.library != "torchao":
            raise ValueError(f"not torchao int8: {fmt.library} {fmt.weights}")
        self.in_features, self.out_features = in_features, out_features
        self.fmt = fmt
        for t in linear_storage(out_features, in_features, fmt):
            tensor = torch.empty(t.numel, dtype=_dtype(t.dtype))
            if t.name == "weight.qdata":
                self.weight = nn.Parameter(
                    tensor.view(out_features, in_features), requires_grad=False
                )
            else:
                self.register_buffer(t.name.removeprefix("weight."), tensor)
        self.bias = (
            nn.Parameter(torch.empty(out_features, dtype=weight_dtype), requires_grad=False)
            if bias
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        m = torch.mm(x.reshape(-1, self.in_features), self.weight.t().to(dtype))
        y = m * self.scale.to(m.dtype).flatten()
        y = y.reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            y += self.bias
        return y.to(dtype)


def quantize_linears(
    model: nn.Module, names: set[str], fmt: LinearFormat, weight_dtype: torch.dtype
) -> None:
    """Replace each linear of ``model`` named in ``names`` (``nn.Linear`` or GPT-2's Conv1D,
    transposed to (out, in) as transformers does) by an :class:`EmulatedLinear4bit` (nf4 /
    fp4), :class:`EmulatedLinear8bit` (int8) or :class:`EmulatedTorchaoInt8` (torchao int8),
    and give ``model`` the once-per-process tensors bitsandbytes caches
    (:func:`~freezegen.memory.quantized.shared_storage`) as buffers."""
    from freezegen.runtime.adapters import linear_features

    for i, t in enumerate(shared_storage(fmt)):
        model.register_buffer(
            f"_bitsandbytes_cache_{i}", torch.empty(t.numel, dtype=_dtype(t.dtype))
        )
    emulation: type[nn.Linear] = (
        EmulatedTorchaoInt8
        if fmt.library == "torchao"
        else EmulatedLinear4bit
        if fmt.four_bit
        else EmulatedLinear8bit
    )
    for name in sorted(names):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        old = getattr(parent, child)
        inp, out = linear_features(old)
        bias = getattr(old, "bias", None) is not None
        setattr(parent, child, emulation(inp, out, fmt, bias, weight_dtype))
