"""Quantized frozen base weights: what they hold and what their matmuls allocate.

* :mod:`~freezegen.memory.quantized.storage` -- one quantized linear's tensors per format
  (:func:`linear_storage`, :func:`shared_storage`, :class:`LinearFormat`, :class:`Allocation`,
  :func:`explained` for ``--explain``);
* :mod:`~freezegen.memory.quantized.matmul` -- its forward and backward temporaries and what
  it saves for one micro-batch (:func:`matmul_memory`, :class:`MatmulMemory`);
* :mod:`~freezegen.memory.quantized.base` -- which linears transformers quantizes and the whole
  base's tensors (:func:`quantized_linears`, :func:`base_storage`).

Pure Python: each formula is read from bitsandbytes' and torchao's source, and
tests/memory/quantized/ checks it against the tensors the libraries allocate on CPU.
"""

from __future__ import annotations

from freezegen.memory.quantized.base import base_storage, quantized_linears
from freezegen.memory.quantized.matmul import MatmulMemory, matmul_memory
from freezegen.memory.quantized.storage import (
    Allocation,
    LinearFormat,
    allocated,
    bias_storage,
    explained,
    linear_storage,
    shared_storage,
)

__all__ = [
    "Allocation",
    "LinearFormat",
    "MatmulMemory",
    "allocated",
    "base_storage",
    "bias_storage",
    "explained",
    "linear_storage",
    "matmul_memory",
    "quantized_linears",
    "shared_storage",
]
