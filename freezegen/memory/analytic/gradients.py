"""The gradients alive while the backward runs, from the top of the model down."""

from __future__ import annotations

from freezegen.arch.families import family_of
from freezegen.arch.params import EMBEDDINGS, Param
from freezegen.memory.analytic.parts import Part, each, matrix, rounded
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture


def grad_suffix(
    arch: Architecture, trainable: list[Param], pbytes: int, shard: int
) -> list[tuple[int, int]]:
    """(bytes, numel) of the gradients alive during each block's backward, by block index:
    the final norm and head (index ``num_layers``) plus every trainable block above. Summed
    once per estimate so that each block's moment does not walk every parameter again."""
    per_block = [(0, 0)] * (arch.num_layers + 1)
    outside_bytes = outside_numel = 0
    sums: dict[int, list[int]] = {}
    for p in trainable:
        if p.block is None:
            if p.kind != EMBEDDINGS:
                outside_bytes += rounded(p.numel * pbytes / shard)
                outside_numel += p.numel
        else:
            acc = sums.setdefault(p.block, [0, 0])
            acc[0] += rounded(p.numel * pbytes / shard)
            acc[1] += p.numel
    running = [outside_bytes, outside_numel]
    for block in range(arch.num_layers, -1, -1):
        per_block[block] = (running[0], running[1])
        acc = sums.get(block)
        if acc is not None:
            running = [running[0] + acc[0], running[1] + acc[1]]
    return per_block


def grads_above(
    arch: Architecture,
    block: int,
    pbytes: int,
    suffix: list[tuple[int, int]],
    tied_grad: list[Part],
) -> list[Part]:
    """Gradients that exist when ``block``'s backward runs: blocks above it, the head and
    final norm, and the head's contribution to a tied trainable embedding (held in the
    autograd buffer until the lookup's gradient is added to it)."""
    total, numel = suffix[min(block, arch.num_layers)]
    where = "" if block >= arch.num_layers else f"the blocks above {block}, "
    parts = [
        Part(
            f"trainable params of {where}the final norm and head",
            total,
            each(numel, pbytes, "params"),
        )
    ]
    return parts + tied_grad


def tied_head_grad(
    spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int
) -> list[Part]:
    """The head's part of a tied trainable embedding's gradient, alive from the head's backward
    until the lookup's part is added at the end of the backward (none when untied)."""
    tied = tied_accumulation(spec, arch, trainable, pbytes) // 2
    return [Part("the tied head's gradient", tied, matrix(arch, pbytes))] if tied else []


def tied_accumulation(spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int) -> int:
    """A tied, trainable embedding gets two gradients (head and lookup) summed at the end of
    backward: two extra vocab x hidden tensors are alive while they are added."""
    tied = family_of(arch).ties_head(arch, spec.model.head)
    if not tied or not any(p.kind == EMBEDDINGS and p.block is None for p in trainable):
        return 0
    return 2 * rounded(arch.vocab_size * arch.hidden_size * pbytes)
