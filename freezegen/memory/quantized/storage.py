"""What one quantized frozen linear of shape (out, in) holds, tensor by tensor.

Each format is written as the tensors the library allocates, read from its source
(bitsandbytes 0.50: ``functional.quantize_4bit`` / ``quantize_blockwise`` and the
``bitsandbytes::quantize_4bit`` kernels; ``nn.Linear8bitLt`` / ``Int8Params``; torchao 0.18:
``Int8Tensor.from_hp``), each with its dtype and element count and the reason for that count.
Listing tensors rather than one byte total lets the estimator round each to the CUDA caching
allocator's 512-byte blocks, which matters: a 4-bit linear's 16-entry code table is 64 bytes
and takes a whole block. tests/memory/quantized/test_storage.py checks every formula against
the storages the real libraries allocate on CPU.

Pure Python (lint may import it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from freezegen.memory.analytic.parts import Part, rounded

if TYPE_CHECKING:
    from freezegen.spec.models import QuantizationSpec

ITEMSIZE = {
    "bool": 1,
    "uint8": 1,
    "int8": 1,
    "bfloat16": 2,
    "float16": 2,
    "float32": 4,
    "int32": 4,
    "int64": 8,
}
"""Bytes per element of each dtype, by torch's name for it."""

SPEC_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
"""The spec's dtype names (``quantization.compute``, precision) as torch names."""

BLOCKSIZE_4BIT = 64
"""bitsandbytes' 4-bit block: ``quantize_4bit(blocksize=None)`` takes 64, and neither
``Params4bit`` nor transformers' ``BitsAndBytesConfig`` passes another."""
NESTED_BLOCKSIZE = 256
"""Double quantization quantizes the block scales in blocks of 256 (``blocksize=256``)."""
CODE_4BIT = 16
"""Entries of a 4-bit code table (NF4 / FP4 values, fp32), ``functional.get_4bit_type``."""
CODE_DYNAMIC = 256
"""Entries of the 8-bit dynamic map that encodes double-quantized scales (fp32)."""


@dataclass(frozen=True)
class Allocation:
    """One tensor: what it is (``name``), its dtype (torch's name), its element count, a
    sentence saying why it has that size (``freezegen estimate --explain`` prints it), and the
    module or parameter it belongs to (``owner``; empty for a layer's own list)."""

    name: str
    dtype: str
    numel: int
    why: str
    owner: str = ""

    @property
    def nbytes(self) -> int:
        """Its bytes as the tensor's storage holds them."""
        return self.numel * ITEMSIZE[self.dtype]

    @property
    def allocated(self) -> int:
        """Its bytes as the CUDA caching allocator books them (512-byte blocks)."""
        return rounded(self.nbytes)


def allocated(tensors: Iterable[Allocation]) -> int:
    """The allocator's bytes for ``tensors``, each rounded on its own."""
    return sum(t.allocated for t in tensors)


def explained(tensors: Iterable[Allocation], label: str = "") -> tuple[Part, ...]:
    """``tensors`` as ``--explain`` parts (:class:`~freezegen.memory.analytic.Part`), one per
    kind of tensor (name and dtype) in order of first appearance: ``label name x count:
    elements x bytes (why)``, its value the allocator's bytes of them all."""
    kinds: dict[tuple[str, str], list[Allocation]] = {}
    for t in tensors:
        kinds.setdefault((t.name, t.dtype), []).append(t)
    parts = []
    for (name, dtype), group in kinds.items():
        count = f" x {len(group):,}" if len(group) > 1 else ""
        parts.append(
            Part(
                " ".join(x for x in (label, name) if x) + count,
                allocated(group),
                ((sum(t.numel for t in group), dtype), (ITEMSIZE[dtype], "B")),
                group[0].why,
            )
        )
    return tuple(parts)


@dataclass(frozen=True)
class LinearFormat:
    """How the frozen base linears are stored and computed.

    ``weights``: nf4 / fp4 (bitsandbytes ``Linear4bit``) or int8 (bitsandbytes
    ``Linear8bitLt``, or torchao's int8 weight-only with ``library="torchao"``);
    ``compute``: the dtype a 4-bit weight is dequantized to (``bnb_4bit_compute_dtype``); int8
    layers compute in their input's dtype, so for them it is the activations' dtype;
    ``quant_storage``: the dtype the packed 4-bit payload is viewed as
    (``bnb_4bit_quant_storage``: uint8, or bfloat16 for FSDP).
    """

    weights: Literal["nf4", "fp4", "int8"]
    double_quant: bool = True
    compute: str = "bfloat16"
    quant_storage: str = "uint8"
    library: Literal["bitsandbytes", "torchao"] = "bitsandbytes"
    blocksize: int = BLOCKSIZE_4BIT
    threshold: float = 6.0
    """bitsandbytes int8's outlier threshold (``llm_int8_threshold``, transformers' default
    6.0): above 0 the forward looks for input columns holding a value that large."""

    @property
    def four_bit(self) -> bool:
        """Whether the weights are bitsandbytes 4-bit (nf4 / fp4)."""
        return self.weights in ("nf4", "fp4")

    @classmethod
    def of(cls, spec: QuantizationSpec) -> LinearFormat | None:
        """The format of a spec's ``quantization:`` section; None for ``weights: none``."""
        if spec.weights == "none":
            return None
        return cls(spec.weights, spec.double_quant, SPEC_DTYPES[spec.compute], library=spec.library)


def blocks(numel: int, blocksize: int) -> int:
    """Blocks of ``blocksize`` over ``numel`` values, the last one partial (``-(n // -b)``)."""
    return -(numel // -blocksize)


def linear_storage(
    out: int, inp: int, fmt: LinearFormat, bias: bool = False, dtype: str = "bfloat16"
) -> tuple[Allocation, ...]:
    """Return the tensors one quantized (out, in) linear holds in steady-state training.

    ``dtype`` is the dtype the model was loaded in (``torch_dtype``): torchao keeps the bias
    in it; bitsandbytes casts the bias to the input's dtype (``compute``) in the first forward
    and keeps it so. Per-layer tensors only: :func:`shared_storage` has the one-per-process
    ones.
    """
    if fmt.four_bit:
        weight = _four_bit(out * inp, fmt)
    elif fmt.library == "torchao":
        weight = _torchao_int8(out, inp)
    else:
        weight = _bnb_int8(out, inp)
    return (*weight, bias_storage(out, fmt, dtype)) if bias else weight


def bias_storage(out: int, fmt: LinearFormat, dtype: str = "bfloat16") -> Allocation:
    """Return the bias of a quantized linear with ``out`` outputs (see :func:`linear_storage`)."""
    if fmt.library == "torchao":
        return Allocation("bias", dtype, out, f"the bias, left in the model's dtype ({dtype})")
    return Allocation(
        "bias",
        fmt.compute,
        out,
        f"the bias, cast to the input's dtype ({fmt.compute}) by the first forward",
    )


def _four_bit(n: int, fmt: LinearFormat) -> tuple[Allocation, ...]:
    nblocks = blocks(n, fmt.blocksize)
    size = ITEMSIZE[fmt.quant_storage]
    payload = Allocation(
        "weight",
        fmt.quant_storage,
        # Two 4-bit codes per byte, an odd count padded by one code: (n + 1) // 2 bytes, viewed
        # as quant_storage (the kernels allocate ((n + 1) // (2 * itemsize), 1)).
        (n + 1) // (2 * size),
        f"{fmt.weights} codes, two per byte ((n + 1) // 2 bytes for n weights), viewed as "
        f"{fmt.quant_storage}",
    )
    code = Allocation(
        "quant_state.code",
        "float32",
        CODE_4BIT,
        f"the {CODE_4BIT} {fmt.weights} values in fp32: every layer builds its own table",
    )
    if not fmt.double_quant:
        absmax = Allocation(
            "quant_state.absmax",
            "float32",
            nblocks,
            f"one fp32 scale per block of {fmt.blocksize} weights (the last block partial)",
        )
        return payload, absmax, code
    nested = blocks(nblocks, NESTED_BLOCKSIZE)
    return (
        payload,
        Allocation(
            "quant_state.absmax",
            "uint8",
            nblocks,
            f"one 8-bit scale per block of {fmt.blocksize} weights (double quantization)",
        ),
        code,
        Allocation(
            "quant_state.offset",
            "float32",
            1,
            "the mean of the block scales, subtracted before quantizing them",
        ),
        Allocation(
            "quant_state.state2.absmax",
            "float32",
            nested,
            f"one fp32 scale per {NESTED_BLOCKSIZE} block scales",
        ),
        Allocation(
            "quant_state.state2.code",
            "float32",
            CODE_DYNAMIC,
            f"the {CODE_DYNAMIC}-entry dynamic map that decodes the 8-bit scales: each "
            "layer's own copy (quantize_blockwise copies it)",
        ),
    )


def _bnb_int8(out: int, inp: int) -> tuple[Allocation, ...]:
    return (
        Allocation(
            "weight",
            "int8",
            out * inp,
            "the int8 weight (its CB: the quantizer's state shares this storage)",
        ),
        Allocation(
            "SCB", "float32", out, "one fp32 absmax per output row (LLM.int8 row-wise scale)"
        ),
    )


def _torchao_int8(out: int, inp: int) -> tuple[Allocation, ...]:
    return (
        Allocation("weight.qdata", "int8", out * inp, "the int8 weight"),
        Allocation("weight.scale", "float32", out, "one fp32 scale per output row"),
        Allocation(
            "weight.zero_point",
            "int8",
            out,
            "one int8 zero point per output row (all zero: symmetric quantization)",
        ),
    )


def shared_storage(fmt: LinearFormat) -> tuple[Allocation, ...]:
    """Return the tensors that exist once per process, whatever the number of layers.

    Double quantization caches bitsandbytes' 8-bit dynamic map (``name2qmap["dynamic"]``) on
    the device of the first scales it quantizes; the layers hold copies of it.
    """
    if fmt.four_bit and fmt.double_quant:
        return (
            Allocation(
                "dynamic map (bitsandbytes' cache)",
                "float32",
                CODE_DYNAMIC,
                "the 8-bit dynamic map bitsandbytes caches once, on the device that "
                "quantized the scales",
            ),
        )
    return ()
