"""The traced estimator's stand-in for the grouped matmul that runs mixture-of-experts layers.

transformers 5 runs a sparse MoE block (Mixtral's ``MixtralExperts``) with its ``grouped_mm``
experts implementation by default: the tokens x top-k routed copies of the hidden states are
sorted by expert and every expert's SwiGLU runs as two ``torch.nn.functional.grouped_mm`` calls
over the whole sorted batch, split by per-expert offsets. Every shape in that path is fixed by
the token count and top-k, whatever the router decides, so it needs no routing stand-in on fake
tensors (the ``eager`` implementation, a Python loop over ``nonzero``/``where`` results, would:
its shapes depend on the routing values a fake tensor does not have).

What fake tensors cannot run is the grouped matmul itself: torch's meta kernel for
``aten._grouped_mm`` accepts bf16 only, while an fp32 or autocast run feeds it fp32 expert
weights (transformers casts the input to the weight's dtype; grouped_mm is not an autocast op).
:func:`grouped_mm_stand_in` replaces transformers' ``_grouped_mm`` during the trace with an
autograd function that allocates and saves what ``GroupedMmBackward0`` does: the (rows, out)
output in the weight's dtype; the input (when the weight needs a gradient), the weight (a view
of the parameter: no new storage) and the per-expert offsets for the backward, which builds
the input's gradient and the full (experts, in, out) weight gradient in the weight's layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


class _GroupedMM(torch.autograd.Function):
    """``grouped_mm(input, weight, offs)`` as memory sees it (values are never read)."""

    @staticmethod
    def forward(ctx: Any, input: torch.Tensor, weight: torch.Tensor, offs: torch.Tensor) -> Any:
        ctx.save_for_backward(input if ctx.needs_input_grad[1] else None, weight, offs)
        return input.new_empty(input.size(0), weight.size(-1))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        _, weight, _ = ctx.saved_tensors
        grad_input = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_input = grad.new_empty(grad.size(0), weight.size(-2))
        if ctx.needs_input_grad[1]:
            grad_weight = torch.empty_like(weight)  # in its layout, as the gradient of a view
        return grad_input, grad_weight, None


def _grouped_mm(input: torch.Tensor, weight: torch.Tensor, offs: torch.Tensor) -> Any:
    # transformers casts the input to the weight's dtype before the grouped matmul.
    return _GroupedMM.apply(input.to(weight.dtype), weight, offs)


@contextlib.contextmanager
def grouped_mm_stand_in() -> Iterator[None]:
    """Run transformers' MoE grouped matmuls as :class:`_GroupedMM` (see the module docstring)."""
    from transformers.integrations import moe

    original = moe._grouped_mm
    moe._grouped_mm = _grouped_mm
    try:
        yield
    finally:
        moe._grouped_mm = original
