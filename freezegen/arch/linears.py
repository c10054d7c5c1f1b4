"""The linear layers of a model of a known family, read from its parameter table.

A linear is a module whose ``.weight`` is a 2-D parameter and that is not an embedding, nor a
mixture-of-experts router (``BlockOperators.router``: transformers 5's routers are modules of
their own, which peft cannot adapt and bitsandbytes does not quantize); the experts' fused 3-D
weights are no linears either. Inside the blocks of a ``conv1d_blocks`` family (GPT-2) the
linears are transformers' Conv1D, whose weight is stored (in, out); everywhere else a weight is
nn.Linear's (out, in). These are the modules :func:`freezegen.runtime.adapters.is_linear`
recognises on the built model (tests/arch/test_adapters.py checks both for every family).
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.arch.family import Family
from freezegen.arch.params import EMBEDDINGS, Param
from freezegen.runtime.names import name_matches

WEIGHT = ".weight"


@dataclass(frozen=True)
class Linear:
    """One linear module: its full name (as ``named_modules()`` gives it), its features, and
    its weight's kind and block (None outside the blocks)."""

    name: str
    in_features: int
    out_features: int
    kind: str
    block: int | None

    @property
    def weight(self) -> str:
        """The name of the module's weight parameter."""
        return self.name + WEIGHT

    @property
    def local_name(self) -> str:
        """The name below its block (``self_attn.q_proj``); the full name outside blocks."""
        if self.block is None:
            return self.name
        parts = self.name.split(".")
        return ".".join(parts[parts.index(str(self.block)) + 1 :])


def linears(family: Family, params: list[Param]) -> list[Linear]:
    """Return every linear of a model of ``family`` whose parameter table is ``params``, in
    model order."""
    router = family.block.router
    found = []
    for p in params:
        if not p.name.endswith(WEIGHT) or len(p.shape) != 2 or p.kind == EMBEDDINGS:
            continue
        module = p.name.removesuffix(WEIGHT)
        if p.block is not None and router is not None and name_matches(module, router):
            continue
        if p.block is not None and family.conv1d_blocks:
            inp, out = p.shape
        else:
            out, inp = p.shape
        found.append(Linear(module, inp, out, p.kind, p.block))
    return found
