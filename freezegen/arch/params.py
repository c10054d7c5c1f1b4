"""The parameters a Hugging Face model of a known family has, without importing torch.

Each family (:mod:`freezegen.arch.families`) writes its table with :func:`linear` and
:func:`norm`; names follow the ``named_parameters()`` of the transformers classes freezegen
builds, so the freeze globs a user writes are checked against the names they will really meet.
A tied output head is not a parameter of its own: it is the token embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.arch.families import family_of
from freezegen.spec.presets import Architecture

EMBEDDINGS, ATTENTION, MLP, NORM, HEAD = "embeddings", "attention", "mlp", "norm", "head"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter tensor: its name, shape, module kind and block index (None outside blocks)."""

    name: str
    shape: tuple[int, ...]
    kind: str
    block: int | None = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def parameter_table(
    arch: Architecture, head: str = "causal-lm", num_labels: int = 2
) -> list[Param]:
    """Return every trainable-capable parameter of ``arch`` with ``head``, in model order."""
    return family_of(arch).parameter_table(arch, head, num_labels)


def linear(
    name: str, out: int, inp: int, kind: str, block: int | None, bias: bool = True
) -> list[Param]:
    """A ``nn.Linear`` named ``name``: its weight (out, in) and, with ``bias``, its bias."""
    params = [Param(f"{name}.weight", (out, inp), kind, block)]
    if bias:
        params.append(Param(f"{name}.bias", (out,), kind, block))
    return params


def norm(name: str, size: int, block: int | None, bias: bool = True) -> list[Param]:
    """A norm named ``name``: its weight and, with ``bias`` (LayerNorm), its bias."""
    params = [Param(f"{name}.weight", (size,), NORM, block)]
    if bias:
        params.append(Param(f"{name}.bias", (size,), NORM, block))
    return params
