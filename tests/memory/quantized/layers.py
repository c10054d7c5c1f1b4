"""Real quantized layers on CPU and a tracker that sees inside bitsandbytes' kernels.

bitsandbytes' kernels are torch custom ops: a ``TorchDispatchMode`` sees a custom op's outputs
but not what its Python kernel allocates inside (the mode is off while it runs).
:class:`KernelTracker` re-enters itself around those kernels so the dequantized weight that
``gemm_4bit`` builds and frees is counted like any other storage.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils._pytree import tree_leaves

from freezegen.memory.quantized import LinearFormat
from freezegen.memory.tracker import StorageTracker

_CPU = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)


class KernelTracker(StorageTracker):
    """:class:`StorageTracker` that also counts what bitsandbytes' kernels allocate inside."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace != "bitsandbytes":
            return super().__torch_dispatch__(func, types, args, kwargs)
        with self:  # the kernel's own aten calls come back through this mode
            out = func.redispatch(_CPU, *args, **(kwargs or {}))
        self.track([t for t in tree_leaves(out) if isinstance(t, torch.Tensor)], self.category)
        return out


def held_tensors(module: torch.nn.Module) -> Iterator[torch.Tensor]:
    """Every tensor a quantized layer or model keeps: its parameters, bitsandbytes' quant
    states (4-bit) and int8 matmul states, and torchao tensors' inner data."""
    for p in module.parameters():
        yield from _inner(p)
        state = getattr(p, "quant_state", None)
        while state is not None:
            yield from (t for t in (state.absmax, state.code, state.offset) if t is not None)
            state = state.state2
        yield from (t for t in (getattr(p, "CB", None), getattr(p, "SCB", None)) if t is not None)
    for m in module.modules():
        state = getattr(m, "state", None)
        if state is not None and hasattr(state, "SCB"):
            yield from (t for t in (state.CB, state.SCB) if t is not None)


def _inner(t: torch.Tensor) -> Iterator[torch.Tensor]:
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is None or type(t) in (torch.Tensor, torch.nn.Parameter):
        yield t
        return
    names, _ = t.__tensor_flatten__()
    for name in names:
        inner = getattr(t, name)
        if isinstance(inner, torch.Tensor):
            yield from _inner(inner)


def storages(tensors) -> list[tuple[str, int]]:
    """(dtype, bytes) of each distinct storage among ``tensors``, sorted: a layer's memory as
    the allocator sees it (views and shared tensors once)."""
    seen = {}
    for t in tensors:
        s = t.untyped_storage()
        seen.setdefault(s._cdata, (str(t.dtype).removeprefix("torch."), s.nbytes()))
    return sorted(seen.values())


def dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def bnb_linear(
    out: int, inp: int, fmt: LinearFormat, bias: bool = False, weight_dtype: str = "bfloat16"
) -> torch.nn.Module:
    """A bitsandbytes ``Linear4bit`` / ``Linear8bitLt`` as transformers builds it, with random
    ``weight_dtype`` weights, quantized on the CPU."""
    import bitsandbytes as bnb

    weight = torch.randn(out, inp, dtype=dtype(weight_dtype))
    if fmt.four_bit:
        layer = bnb.nn.Linear4bit(
            inp,
            out,
            bias=bias,
            compute_dtype=dtype(fmt.compute),
            compress_statistics=fmt.double_quant,
            quant_type=fmt.weights,
            quant_storage=dtype(fmt.quant_storage),
        )
        layer.weight = bnb.nn.Params4bit(
            weight,
            requires_grad=False,
            compress_statistics=fmt.double_quant,
            quant_type=fmt.weights,
            quant_storage=dtype(fmt.quant_storage),
            module=layer,
        )
    else:
        layer = bnb.nn.Linear8bitLt(
            inp, out, bias=bias, has_fp16_weights=False, threshold=fmt.threshold
        )
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    if bias:
        layer.bias = torch.nn.Parameter(torch.randn(out, dtype=dtype(weight_dtype)), False)
    return layer.to("cpu")


def torchao_linear(
    out: int, inp: int, bias: bool = False, dtype: torch.dtype = torch.bfloat16
) -> torch.nn.Module:
    """An ``nn.Linear`` in ``dtype`` after torchao's ``quantize_(..., Int8WeightOnlyConfig())``."""
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    model = torch.nn.Sequential(torch.nn.Linear(inp, out, bias=bias)).to(dtype)
    quantize_(model, Int8WeightOnlyConfig())
    model.requires_grad_(False)
    return model[0]
