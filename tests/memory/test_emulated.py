"""The traced estimator's emulated 4-bit linear holds and allocates what memory/quantized says
bitsandbytes holds and allocates on CUDA (which tests/memory/quantized/ check against the
library on CPU)."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from freezegen.memory.emulated import EmulatedLinear4bit, quantize_linears
from freezegen.memory.quantized import LinearFormat, allocated, linear_storage, matmul_memory
from freezegen.memory.quantized.storage import shared_storage
from freezegen.memory.tracker import StorageTracker

FORMATS = [
    LinearFormat("nf4"),
    LinearFormat("fp4", double_quant=False),
    LinearFormat("nf4", compute="float16"),
]


def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.weights}-{f.compute}")
def test_it_holds_the_formats_tensors(fmt):
    with FakeTensorMode():
        layer = EmulatedLinear4bit(96, 80, fmt, bias=True, weight_dtype=torch.float32)
    held = sorted((str(t.dtype), t.numel()) for t in _tensors(layer))
    expected = [(f"torch.{t.dtype}", t.numel) for t in linear_storage(80, 96, fmt)]
    expected.append((f"torch.{fmt.compute}", 80))  # the bias, in the compute dtype
    assert held == sorted(expected)
    assert not any(p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.weights}-{f.compute}")
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_forward_and_backward_peaks_are_the_models(fmt, input_dtype):
    tokens, inp, out = 40, 96, 80
    model = matmul_memory(
        out,
        inp,
        tokens,
        fmt,
        input_dtype=str(input_dtype).removeprefix("torch."),
        weight_dtype="float32",
    )
    with FakeTensorMode():
        layer = EmulatedLinear4bit(inp, out, fmt, bias=False, weight_dtype=torch.float32)
        x = torch.empty(tokens, inp, dtype=input_dtype, requires_grad=True)
        grad = torch.empty(tokens, out, dtype=input_dtype)
        tracker = StorageTracker()
        with tracker:
            before = tracker.current
            y = layer(x)
            forward_peak = tracker.peak - before
            tracker.reset_peak()
            before = tracker.current
            (x_grad,) = torch.autograd.grad(y, x, grad)
            backward_peak = tracker.peak - before
    assert y.dtype == input_dtype and x_grad.dtype == input_dtype
    assert forward_peak == model.forward_peak
    assert backward_peak == model.backward_peak


def test_the_model_gets_the_shared_tables_once():
    fmt = LinearFormat("nf4")
    with FakeTensorMode():
        model = torch.nn.Sequential(*(torch.nn.Linear(64, 64, bias=False) for _ in range(2)))
        quantize_linears(model, {"0", "1"}, fmt, torch.float32)
    assert all(isinstance(m, EmulatedLinear4bit) for m in model)
    shared = sum(b.numel() for name, b in model.named_buffers() if "cache" in name)
    assert shared == sum(t.numel for t in shared_storage(fmt))
    held = sum(allocated(linear_storage(64, 64, fmt)) for _ in model) + allocated(
        shared_storage(fmt)
    )
    assert held == sum(-(-t.numel() * t.element_size() // 512) * 512 for t in _tensors(model))
