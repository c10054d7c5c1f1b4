"""The traced estimator's emulated 4-bit and int8 linears hold and allocate what
memory/quantized says bitsandbytes holds and allocates on CUDA (which tests/memory/quantized/
check against the library on CPU)."""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from freezegen.memory.emulated import (
    EmulatedLinear4bit,
    EmulatedLinear8bit,
    EmulatedTorchaoInt8,
    quantize_linears,
)
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


INT8 = [LinearFormat("int8"), LinearFormat("int8", threshold=0.0)]


@pytest.mark.parametrize("fmt", INT8, ids=lambda f: f"threshold{f.threshold}")
def test_int8_holds_the_formats_tensors(fmt):
    with FakeTensorMode():
        layer = EmulatedLinear8bit(96, 80, fmt, bias=True, weight_dtype=torch.float32)
    held = sorted((str(t.dtype), t.numel()) for t in _tensors(layer))
    expected = [(f"torch.{t.dtype}", t.numel) for t in linear_storage(80, 96, fmt)]
    expected.append(("torch.float32", 80))  # the bias, in the dtype the model was loaded in
    assert held == sorted(expected)
    assert not any(p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("fmt", INT8, ids=lambda f: f"threshold{f.threshold}")
@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_int8_forward_and_backward_peaks_are_the_cuda_models(fmt, input_dtype):
    tokens, inp, out = 40, 96, 80
    dtype = str(input_dtype).removeprefix("torch.")
    model = matmul_memory(out, inp, tokens, replace(fmt, compute=dtype))
    with FakeTensorMode():
        layer = EmulatedLinear8bit(inp, out, fmt, bias=True, weight_dtype=torch.float32)
        x = torch.empty(2, tokens // 2, inp, dtype=input_dtype, requires_grad=True)
        grad = torch.empty(2, tokens // 2, out, dtype=input_dtype)
        layer(x)  # the first forward casts the bias to the input's dtype
        tracker = StorageTracker()
        tracker.track([x, grad], "activations")  # its reshape is a view of a known storage
        with tracker:
            before = tracker.current
            y = layer(x)
            forward_peak = tracker.peak - before
            tracker.reset_peak()
            before = tracker.current
            (x_grad,) = torch.autograd.grad(y, x, grad)
            backward_peak = tracker.peak - before
    assert layer.bias.dtype == input_dtype
    assert y.dtype == input_dtype and x_grad.dtype == input_dtype
    assert forward_peak == model.forward_peak
    assert backward_peak == model.backward_peak


def test_int8_keeps_its_input_while_the_graph_lives():
    fmt = LinearFormat("int8", compute="float32")
    assert matmul_memory(48, 64, 10, fmt).saves_input
    with FakeTensorMode():
        layer = EmulatedLinear8bit(64, 48, fmt, bias=False, weight_dtype=torch.float32)
        leaf = torch.empty(10, 64, requires_grad=True)
        tracker = StorageTracker()
        with tracker:
            x = leaf * 2  # not a leaf: only the graph can keep it alive
            y = layer(x)
            with_input = tracker.current
            del x
            gc.collect()
            assert tracker.current == with_input
            del y
            gc.collect()
            assert tracker.current == 0


def test_int8_refuses_another_format():
    with pytest.raises(ValueError, match="not bitsandbytes int8"):
        EmulatedLinear8bit(64, 48, LinearFormat("nf4"), bias=False, weight_dtype=torch.float32)


def test_int8_linears_replace_the_named_ones():
    fmt = LinearFormat("int8")
    with FakeTensorMode():
        model = torch.nn.Sequential(*(torch.nn.Linear(64, 32) for _ in range(2)))
        quantize_linears(model, {"1"}, fmt, torch.float32)
    assert isinstance(model[1], EmulatedLinear8bit) and type(model[0]) is torch.nn.Linear
    assert not any("cache" in name for name, _ in model.named_buffers())  # no shared tables
    held = allocated(linear_storage(32, 64, fmt)) + 512  # and its fp32 bias
    assert held == sum(-(-t.numel() * t.element_size() // 512) * 512 for t in _tensors(model[1]))


TORCHAO = LinearFormat("int8", library="torchao")


def test_torchao_holds_the_formats_tensors_and_replaces_the_named_linears():
    with FakeTensorMode():
        model = torch.nn.Sequential(*(torch.nn.Linear(96, 80) for _ in range(2)))
        quantize_linears(model, {"0"}, TORCHAO, torch.float32)
    layer = model[0]
    assert isinstance(layer, EmulatedTorchaoInt8) and type(model[1]) is torch.nn.Linear
    held = sorted((str(t.dtype), t.numel()) for t in _tensors(layer))
    expected = [(f"torch.{t.dtype}", t.numel) for t in linear_storage(80, 96, TORCHAO)]
    expected.append(("torch.float32", 80))  # the bias, in the dtype the model was loaded in
    assert held == sorted(expected)
    assert not any(p.requires_grad for p in layer.parameters())
    with pytest.raises(ValueError, match="not torchao int8"):
        EmulatedTorchaoInt8(64, 48, LinearFormat("int8"), bias=False, weight_dtype=torch.float32)


@pytest.mark.parametrize("autocast", [None, torch.bfloat16, torch.float16])
def test_torchao_forward_and_backward_are_the_models(autocast):
    # What tests/memory/quantized/test_matmul.py checks against torchao's own layer on CPU.
    tokens, inp, out = 40, 96, 80
    compute = str(autocast or torch.float32).removeprefix("torch.")
    model = matmul_memory(
        out, inp, tokens, replace(TORCHAO, compute=compute), input_dtype="float32"
    )
    with FakeTensorMode():
        layer = EmulatedTorchaoInt8(inp, out, TORCHAO, bias=False, weight_dtype=torch.float32)
        x = torch.empty(2, tokens // 2, inp, requires_grad=True)
        tracker = StorageTracker()
        tracker.track(_tensors(layer), "parameters")
        tracker.track([x], "activations")
        with tracker:
            before = tracker.current
            with torch.autocast("cpu", autocast or torch.bfloat16, enabled=autocast is not None):
                y = layer(x)
            forward_peak = tracker.peak - before
            assert tracker.current - before == model.output.allocated + allocated(model.saved)
            grad = torch.empty_like(y)
            tracker.reset_peak()
            before = tracker.current
            (x_grad,) = torch.autograd.grad(y, x, grad)
            backward_peak = tracker.peak - before
    assert y.dtype == x_grad.dtype == torch.float32
    assert forward_peak == model.forward_peak
    assert backward_peak + allocated(model.saved) == model.backward_peak
