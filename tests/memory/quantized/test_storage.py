"""Each format's tensors, formula by formula, against the storages the libraries allocate."""

from __future__ import annotations

import subprocess
import sys

import pytest

from freezegen.memory.quantized import LinearFormat, linear_storage, shared_storage
from freezegen.spec.models import QuantizationSpec

torch = pytest.importorskip("torch")
pytest.importorskip("bitsandbytes")

from tests.memory.quantized.layers import (  # noqa: E402
    bnb_linear,
    held_tensors,
    storages,
    torchao_linear,
)

# (out, in): whole blocks; a partial last block (63 and 15 weights: one block, odd counts);
# 300 blocks, so double quantization needs two second-level scales.
SHAPES = [(48, 40), (7, 9), (3, 5), (100, 70), (96, 200)]
FOUR_BIT = [
    LinearFormat(weights, double_quant, quant_storage=quant_storage)
    for weights in ("nf4", "fp4")
    for double_quant in (True, False)
    for quant_storage in ("uint8", "bfloat16")
]


def _formula(tensors) -> list[tuple[str, int]]:
    return sorted((t.dtype, t.nbytes) for t in tensors)


def _train_step(layer) -> None:
    """One bf16 forward and backward, as training runs them: bitsandbytes casts the bias to
    the input's dtype in the forward, for good, and int8 moves CB / SCB into its state."""
    x = torch.randn(2, layer.in_features, dtype=torch.bfloat16, requires_grad=True)
    layer(x).sum().backward()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "fmt", FOUR_BIT, ids=lambda f: f"{f.weights}-dq{f.double_quant:d}-{f.quant_storage}"
)
def test_four_bit_storage_is_what_bitsandbytes_allocates(fmt, shape):
    out, inp = shape
    layer = bnb_linear(out, inp, fmt, bias=True, weight_dtype="float32")
    _train_step(layer)
    assert storages(held_tensors(layer)) == _formula(linear_storage(out, inp, fmt, bias=True))
    state = layer.weight.quant_state
    # the packed payload is viewed as quant_storage; the scales' dtype says double quantization
    assert layer.weight.dtype == getattr(torch, fmt.quant_storage)
    assert state.absmax.dtype == (torch.uint8 if fmt.double_quant else torch.float32)
    assert layer.bias.dtype == torch.bfloat16  # loaded fp32, cast by the forward


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_bnb_int8_storage_is_what_bitsandbytes_keeps_in_training(shape):
    out, inp = shape
    fmt = LinearFormat("int8")
    layer = bnb_linear(out, inp, fmt, bias=True, weight_dtype="float32")
    _train_step(layer)
    assert layer.bias.dtype == torch.bfloat16
    assert layer.state.CB is not None and layer.state.CB.data_ptr() == layer.weight.data_ptr()
    assert storages(held_tensors(layer)) == _formula(linear_storage(out, inp, fmt, bias=True))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_torchao_int8_storage_is_what_torchao_allocates(shape):
    pytest.importorskip("torchao")
    out, inp = shape
    fmt = LinearFormat("int8", library="torchao")
    layer = torchao_linear(out, inp, bias=True)
    _train_step(layer)
    assert storages(held_tensors(layer)) == _formula(linear_storage(out, inp, fmt, bias=True))


def test_double_quantization_caches_one_dynamic_map_per_process():
    import bitsandbytes as bnb

    fmt = LinearFormat("nf4", double_quant=True)
    layers = [bnb_linear(48, 40, fmt) for _ in range(2)]
    cached = bnb.functional.name2qmap["dynamic"]
    assert storages([cached]) == _formula(shared_storage(fmt))
    # every layer holds its own copy as well, counted in linear_storage
    copies = {layer.weight.quant_state.state2.code.data_ptr() for layer in layers}
    assert len(copies | {cached.data_ptr()}) == 3
    assert shared_storage(LinearFormat("nf4", double_quant=False)) == ()
    assert shared_storage(LinearFormat("int8")) == ()


def test_four_bit_code_tables_are_per_layer():
    fmt = LinearFormat("fp4", double_quant=False)
    layers = [bnb_linear(48, 40, fmt) for _ in range(2)]
    assert len({layer.weight.quant_state.code.data_ptr() for layer in layers}) == 2


def test_allocator_rounding_is_per_tensor():
    tensors = linear_storage(48, 40, LinearFormat("nf4"))
    # payload, scales, code, offset, second-level scales, dynamic map: 2,086 bytes in six
    # allocations, each at least one 512-byte block
    assert [t.nbytes for t in tensors] == [960, 30, 64, 4, 4, 1024]
    assert sum(t.allocated for t in tensors) == 1024 + 4 * 512 + 1024


def test_format_of_a_spec():
    fmt = LinearFormat.of(QuantizationSpec(weights="nf4", double_quant=False, compute="fp16"))
    assert fmt == LinearFormat("nf4", double_quant=False, compute="float16")
    assert LinearFormat.of(QuantizationSpec(weights="none")) is None
    assert LinearFormat.of(QuantizationSpec(weights="int8")).library == "bitsandbytes"
    torchao = QuantizationSpec(weights="int8", library="torchao")
    assert LinearFormat.of(torchao) == LinearFormat("int8", library="torchao")


def test_does_not_import_torch():
    code = (
        "import sys, freezegen.memory.quantized; "
        "assert not {'torch', 'bitsandbytes', 'torchao'} & set(sys.modules), 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
