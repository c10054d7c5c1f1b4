"""Quantized frozen base weights: what they hold and what their matmuls allocate.

* :mod:`~freezegen.memory.quantized.storage` -- one quantized linear's tensors per format
  (:func:`linear_storage`, :func:`shared_storage`, :class:`LinearFormat`, :class:`Allocation`);
* :mod:`~freezegen.memory.quantized.matmul` -- its forward and backward temporaries and what
  it saves for one micro-batch (:func:`matmul_memory`, :class:`MatmulMemory`).

Pure Python: each formula is read from bitsandbytes' and torchao's source, and
tests/memory/quantized/ checks it against the tensors the libraries allocate on CPU.
"""

from __future__ import annotations

from freezegen.memory.quantized.matmul import MatmulMemory, matmul_memory
from freezegen.memory.quantized.storage import (
    Allocation,
    LinearFormat,
    allocated,
    bias_storage,
    linear_storage,
    shared_storage,
)

__all__ = [
    "Allocation",
    "LinearFormat",
    "MatmulMemory",
    "allocated",
    "bias_storage",
    "linear_storage",
    "matmul_memory",
    "shared_storage",
]
