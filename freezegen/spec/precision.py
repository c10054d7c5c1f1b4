"""What a spec's ``precision`` means for the tensors of a run, decided once.

``fp32`` keeps everything in fp32; ``fp16`` and ``bf16`` keep fp32 parameters and run the
forward under autocast (fp16 with a GradScaler); ``bf16-pure`` converts the model to bf16. The
estimators (and anything else that needs an element size or a dtype) ask this object instead of
comparing the spec's string again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrecisionName = Literal["fp32", "fp16", "bf16", "bf16-pure"]

_AUTOCAST_DTYPE = {"fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class Precision:
    """The precision policy of ``name`` (a spec's ``precision``)."""

    name: PrecisionName

    @property
    def autocast_dtype(self) -> str | None:
        """The torch dtype name autocast runs matmuls in (None without autocast)."""
        return _AUTOCAST_DTYPE.get(self.name)

    @property
    def autocast(self) -> bool:
        """Whether the forward runs under autocast (fp32 parameters, low-precision matmuls)."""
        return self.autocast_dtype is not None

    @property
    def pure_bf16(self) -> bool:
        """Whether the whole model (parameters, gradients, optimizer states) is bf16."""
        return self.name == "bf16-pure"

    @property
    def scaler(self) -> bool:
        """Whether the loss is scaled (fp16 autocast needs a GradScaler)."""
        return self.name == "fp16"

    @property
    def param_bytes(self) -> int:
        """Bytes per parameter element; gradients and optimizer states follow the parameters."""
        return 2 if self.pure_bf16 else 4

    @property
    def param_dtype(self) -> str:
        """The parameters' dtype as --explain names it."""
        return "bf16" if self.pure_bf16 else "fp32"

    @property
    def matmul_bytes(self) -> int:
        """Bytes per element of matmul outputs and of the (cast) inputs a matmul saves."""
        return 2 if self.autocast or self.pure_bf16 else 4

    @property
    def residual_bytes(self) -> int:
        """Bytes per element of the residual stream: fp32 under autocast too (the fp32
        embedding output plus a low-precision branch promotes to fp32)."""
        return self.param_bytes
