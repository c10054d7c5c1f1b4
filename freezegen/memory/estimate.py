"""The result of a memory estimate, the budget it is checked against, and the fixed overhead.

Pure Python: ``freezegen lint`` imports this without torch. The JSON form is the contract of
docs/architecture.md ("Memory estimate"): ``peak_bytes`` predicts
``torch.cuda.max_memory_allocated()`` over a steady-state step on one device and equals the sum
of ``breakdown``; ``overhead_bytes`` is what the allocator statistics never see (CUDA context,
cuBLAS workspace, fragmentation margin) and is added to the peak only when comparing with the
budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from freezegen.spec.models import Spec, adapter_sections
from freezegen.spec.presets import GIB, GPUS, MIB

# Measured on CUDA 12 with lazy module loading: the context plus torch's kernels take 300-500 MiB
# before the first allocation; older cards (T4, V100) sit at the low end.
CUDA_CONTEXT_BYTES = {(7, 0): 300 * MIB, (7, 5): 300 * MIB}
DEFAULT_CUDA_CONTEXT_BYTES = 450 * MIB
# cuBLAS workspace torch sets up per handle/stream: 32 MiB on Hopper, ~8 MiB before it.
CUBLAS_WORKSPACE_BYTES = {(9, 0): 32 * MIB}
DEFAULT_CUBLAS_WORKSPACE_BYTES = 8 * MIB
# The caching allocator rounds large blocks to 2 MiB and keeps unsplit remainders; a step's
# reserved memory runs a few percent above its allocated peak.
FRAGMENTATION = 0.05


class EstimateError(Exception):
    """A spec the estimator cannot handle: the message says why and what to do instead."""


def refuse_unmodelled(spec: Spec) -> None:
    """Raise :class:`EstimateError` for a spec whose run neither estimator models: it would
    otherwise be estimated as another run. Modelled: LoRA adapters and bitsandbytes 4-bit
    (nf4 / fp4) and int8 or torchao int8 frozen base weights, on one device or with DDP, for a
    model of a known family, and adapters over a full-precision base under FSDP2. Not
    modelled: FSDP with a quantized base, a factory model with either, and a quantized base
    under bf16-pure (the generated script loads it in fp32)."""
    sections = adapter_sections(spec)
    if sections is None:
        return
    quant = spec.quantization.weights if spec.quantization is not None else "none"
    why = None
    if spec.distributed.strategy == "fsdp" and quant != "none":
        why = "a quantized base with FSDP is not modelled; use ddp or one device"
    elif spec.model.factory is not None:
        why = f"{sections} needs a model of a known family, not a factory"
    elif quant != "none" and spec.precision == "bf16-pure":
        why = "a quantized base under bf16-pure is not modelled; use precision bf16"
    if why is not None:
        raise EstimateError(f"{why}: the estimate would not be this run's")


@dataclass
class Breakdown:
    """Bytes live at the peak, by what holds them."""

    parameters: int = 0
    gradients: int = 0
    optimizer_states: int = 0
    activations: int = 0
    temporaries: int = 0

    @property
    def total(self) -> int:
        return (
            self.parameters
            + self.gradients
            + self.optimizer_states
            + self.activations
            + self.temporaries
        )


@dataclass
class MemoryEstimate:
    """A per-device peak-memory prediction for one training step of a spec.

    ``budget_bytes`` is the device memory less ``hardware.reserve_gib`` (0 when the spec names no
    hardware); ``overhead_bytes`` is reported apart from ``peak_bytes``.
    """

    method: str
    peak_bytes: int
    budget_bytes: int
    overhead_bytes: int
    breakdown: Breakdown = field(default_factory=Breakdown)
    trainable_parameters: int = 0
    total_parameters: int = 0
    per_device: bool = True

    @property
    def required_bytes(self) -> int:
        """Peak plus overhead: what must fit in the budget."""
        return self.peak_bytes + self.overhead_bytes

    @property
    def headroom_bytes(self) -> int | None:
        """Budget left after the required bytes (negative: over budget); None without a budget."""
        return self.budget_bytes - self.required_bytes if self.budget_bytes else None

    @property
    def fits(self) -> bool | None:
        """Whether the step fits the budget; None when the spec names no hardware."""
        headroom = self.headroom_bytes
        return None if headroom is None else headroom >= 0

    def to_json_dict(self) -> dict[str, Any]:
        """Return the JSON object of the estimate contract, keys in contract order."""
        return {
            "method": self.method,
            "peak_bytes": self.peak_bytes,
            "budget_bytes": self.budget_bytes,
            "overhead_bytes": self.overhead_bytes,
            "breakdown": asdict(self.breakdown),
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
            "per_device": self.per_device,
        }


def budget_bytes(spec: Spec) -> int:
    """Return the memory one device offers the run (0 when the spec names no hardware)."""
    hw = spec.hardware
    if hw is None:
        return 0
    total = GPUS[hw.gpu].memory_bytes if hw.gpu is not None else int((hw.memory_gib or 0) * GIB)
    return max(total - int(hw.reserve_gib * GIB), 0)


def overhead_bytes(spec: Spec, peak_bytes: int) -> int:
    """Return the CUDA context + cuBLAS workspace + fragmentation margin for ``peak_bytes``."""
    cc = GPUS[spec.hardware.gpu].compute_capability if spec.hardware and spec.hardware.gpu else None
    context = (
        CUDA_CONTEXT_BYTES.get(cc, DEFAULT_CUDA_CONTEXT_BYTES) if cc else DEFAULT_CUDA_CONTEXT_BYTES
    )
    workspace = (
        CUBLAS_WORKSPACE_BYTES.get(cc, DEFAULT_CUBLAS_WORKSPACE_BYTES)
        if cc
        else DEFAULT_CUBLAS_WORKSPACE_BYTES
    )
    return context + workspace + int(peak_bytes * FRAGMENTATION)


def finish(
    method: str, spec: Spec, breakdown: Breakdown, trainable: int, total: int
) -> MemoryEstimate:
    """Assemble a :class:`MemoryEstimate` whose peak is the breakdown's sum."""
    peak = breakdown.total
    return MemoryEstimate(
        method,
        peak,
        budget_bytes(spec),
        overhead_bytes(spec, peak),
        breakdown,
        trainable,
        total,
        per_device=True,
    )
