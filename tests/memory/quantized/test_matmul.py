"""Each quantized matmul's temporaries and saved tensors, against one real forward and backward
on CPU, measured storage by storage (inside bitsandbytes' kernels too)."""

from __future__ import annotations

import gc

import pytest

from freezegen.memory.quantized import LinearFormat, allocated, matmul_memory

torch = pytest.importorskip("torch")
pytest.importorskip("bitsandbytes")

from tests.memory.quantized.layers import (  # noqa: E402
    KernelTracker,
    bnb_linear,
    held_tensors,
    torchao_linear,
)

# (out, in, batch, sequence): whole blocks; 300 blocks (two second-level scales).
# The CPU's 4-bit dequantizer needs an even in_features (odd ones take a generic path).
SHAPES = [(48, 64, 2, 5), (96, 200, 1, 3)]
FORMATS = [
    LinearFormat("nf4", True),
    LinearFormat("nf4", False),
    LinearFormat("fp4", True),
    LinearFormat("int8"),
    LinearFormat("int8", library="torchao"),
]


def _layer(fmt: LinearFormat, out: int, inp: int, weight_dtype: str):
    if fmt.library == "torchao":
        return torchao_linear(out, inp)
    return bnb_linear(out, inp, fmt, weight_dtype=weight_dtype)


def _ids(fmt: LinearFormat) -> str:
    return f"{fmt.library}-{fmt.weights}-dq{fmt.double_quant:d}"


def _dtypes(fmt: LinearFormat) -> list[tuple[str, str]]:
    """(weight dtype, input dtype) pairs: a 4-bit backward dequantizes to the dtype the model
    was loaded in, and a 4-bit layer casts an input of another dtype to its compute dtype."""
    if fmt.four_bit:
        return [("bfloat16", "bfloat16"), ("float32", "bfloat16"), ("bfloat16", "float32")]
    return [("bfloat16", fmt.compute)]  # int8 computes in its input's dtype


CASES = [
    (fmt, shape, weight_dtype, input_dtype)
    for fmt in [*FORMATS, LinearFormat("int8", compute="float32")]
    for shape in SHAPES
    for weight_dtype, input_dtype in _dtypes(fmt)
]


@pytest.mark.parametrize(
    ("fmt", "shape", "weight_dtype", "input_dtype"),
    CASES,
    ids=[f"{_ids(f)}-{f.compute}-{s}-{w}-{i}" for f, s, w, i in CASES],
)
def test_forward_and_backward_allocate_what_the_model_says(fmt, shape, weight_dtype, input_dtype):
    out, inp, batch, seq = shape
    tokens = batch * seq
    layer = _layer(fmt, out, inp, weight_dtype)
    model = matmul_memory(
        out,
        inp,
        tokens,
        fmt,
        input_dtype=input_dtype,
        weight_dtype=weight_dtype,
        backend="cpu",
    )
    x = torch.randn(batch, seq, inp, dtype=getattr(torch, input_dtype), requires_grad=True)
    tracker = KernelTracker()
    tracker.track([*held_tensors(layer), x], "parameters")
    with tracker:
        base = tracker.current
        tracker.reset_peak()
        y = layer(x)
        assert tracker.peak - base == model.forward_peak
        assert tracker.current - base == model.output.allocated + allocated(model.saved)
        grad = torch.randn_like(y)
        base = tracker.current
        tracker.reset_peak()
        y.backward(grad)
        saved = allocated(model.saved)
        assert tracker.peak - base + saved == model.backward_peak
        gc.collect()
        # the saved tensors are gone, the input's gradient stays
        assert tracker.current - base == model.input_gradient.allocated - saved
    assert x.grad is not None and x.grad.dtype == x.dtype


@pytest.mark.parametrize("autocast", [None, "bfloat16", "float16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_torchao_in_an_fp32_model_allocates_what_the_model_says(shape, autocast):
    # The generated script's setting: the base loaded in fp32, the residual stream fp32,
    # autocast (when on) running mm in 16 bits.
    pytest.importorskip("torchao")
    out, inp, batch, seq = shape
    compute = autocast or "float32"
    fmt = LinearFormat("int8", compute=compute, library="torchao")
    model = matmul_memory(out, inp, batch * seq, fmt, input_dtype="float32")
    layer = torchao_linear(out, inp, dtype=torch.float32)
    x = torch.randn(batch, seq, inp, requires_grad=True)
    tracker = KernelTracker()
    tracker.track([*held_tensors(layer), x], "parameters")
    with tracker:
        base = tracker.current
        tracker.reset_peak()
        with torch.autocast("cpu", getattr(torch, compute), enabled=autocast is not None):
            y = layer(x)
        assert tracker.peak - base == model.forward_peak
        assert tracker.current - base == model.output.allocated + allocated(model.saved)
        grad = torch.randn_like(y)
        base = tracker.current
        tracker.reset_peak()
        y.backward(grad)
        saved = allocated(model.saved)
        assert tracker.peak - base + saved == model.backward_peak
        gc.collect()
        assert tracker.current - base == model.input_gradient.allocated - saved
    assert y.dtype == x.grad.dtype == torch.float32


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_only_bitsandbytes_int8_keeps_the_input(fmt):
    out, inp = 48, 64
    layer = _layer(fmt, out, inp, "bfloat16")
    model = matmul_memory(out, inp, 10, fmt, backend="cpu")
    leaf = torch.randn(10, inp, dtype=torch.bfloat16, requires_grad=True)
    tracker = KernelTracker()
    tracker.track([*held_tensors(layer), leaf], "parameters")
    with tracker:
        x = leaf.clone()  # not a leaf: only the graph's saved tensors can keep it alive
        y = layer(x)
        with_input = tracker.current
        del x
        gc.collect()
        kept = tracker.current == with_input
    assert kept == model.saves_input
    assert y.grad_fn is not None


@pytest.mark.parametrize("fmt", FORMATS, ids=_ids)
def test_without_an_input_gradient_nothing_is_saved(fmt):
    out, inp, tokens = 48, 64, 10
    layer = _layer(fmt, out, inp, "bfloat16")
    model = matmul_memory(out, inp, tokens, fmt, input_grad=False, backend="cpu")
    assert model.saved == () and not model.saves_input and model.backward_peak == 0
    assert model.input_gradient is None
    x = torch.randn(tokens, inp, dtype=torch.bfloat16)
    tracker = KernelTracker()
    tracker.track([*held_tensors(layer), x], "parameters")
    with tracker:
        base = tracker.current
        tracker.reset_peak()
        y = layer(x)
        assert tracker.peak - base == model.forward_peak
        assert tracker.current - base == model.output.allocated
    assert y.grad_fn is None


def test_cuda_paths_differ_from_cpu_where_the_source_says():
    tokens, out, inp = 4096, 4096, 4096
    nf4 = LinearFormat("nf4")
    cuda, cpu = (matmul_memory(out, inp, tokens, nf4, backend=b) for b in ("cuda", "cpu"))
    # CUDA's gemm_4bit fallback keeps the decoded scales beside scales + offset.
    assert cuda.forward_peak - cpu.forward_peak == 4096 * 4096 // 64 * 4
    assert cuda.backward == cpu.backward
    int8 = LinearFormat("int8")
    cuda, cpu = (matmul_memory(out, inp, tokens, int8, backend=b) for b in ("cuda", "cpu"))
    assert cuda.backward == cpu.backward and cuda.saves_input and cpu.saves_input
    # MatMul8bitLt: fp16 input, int8 input, |input| and the outlier mask at once (2+1+2+1 B)
    # plus the row scales; then int32 and fp16 products beside the bf16 output.
    quantize = (2 + 1 + 2 + 1) * tokens * inp + 4 * tokens
    products = tokens * inp + 4 * tokens + (4 + 2 + 2) * tokens * out
    assert cuda.forward_peak == max(quantize, products)
    no_outliers = LinearFormat("int8", threshold=0.0)
    quantize = (2 + 1) * tokens * inp + 4 * tokens
    assert matmul_memory(out, inp, tokens, no_outliers).forward_peak == max(quantize, products)


def test_an_int8_layer_computes_in_its_input_dtype():
    with pytest.raises(ValueError, match="compute=float32"):
        matmul_memory(48, 64, 10, LinearFormat("int8"), input_dtype="float32")
