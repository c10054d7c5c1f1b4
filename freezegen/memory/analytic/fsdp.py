"""FSDP2 (``fully_shard`` per block plus the root, as rank 0 of a fake process group runs it in
the traced estimator): one padded shard of each parameter and optimizer state and one flat
sharded gradient per unit. The root unit (embeddings, final norm, head) is gathered through
forward and loss and again from the head's backward on, with the head's unsharded gradients
alive until the end of backward; block ``i``'s backward holds its gathered parameters and its
unsharded gradients, the previous block's reduce-scatter input and the next block's prefetched
all-gather buffer.

Block ``i``'s forward all-gather (torch 2.13, ``FSDPParamGroup.pre_forward``): ``unshard``
allocates the flat all-gather output (every padded shard times the world size, in the
parameters' own dtype: the generated script sets no ``MixedPrecisionPolicy``, so no cast copy
of the input is made and the input is a view into that output); ``wait_for_unshard`` then drops
the previous unit's deferred all-gather result from the shared state, but its local
``prev_all_gather_state`` still references it until it returns, and
``foreach_all_gather_copy_out`` allocates block ``i``'s unsharded parameters meanwhile. So three
buffers are alive together: the previous unit's flat output (the root's, for block 0), block
``i``'s and block ``i``'s gathered parameters. The previous block was resharded by its
post-forward. When few parameters train, little is saved, and this moment sets the peak.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from freezegen.arch.params import ATTENTION, EMBEDDINGS, MLP, Param
from freezegen.memory.analytic.activations import Block, norm_backward, saved_parts
from freezegen.memory.analytic.gradients import tied_head_grad
from freezegen.memory.analytic.loss import embeddings_saved
from freezegen.memory.analytic.parts import (
    Moment,
    MomentKind,
    Part,
    each,
    moment,
    named,
    rounded,
    summed,
    zero,
)
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def shard_numel(p: Param, world: int) -> int:
    """Elements of rank 0's shard: FSDP pads dim 0 to a multiple of the world size."""
    if world == 1 or not p.shape:
        return p.numel
    return -(-p.shape[0] // world) * (p.numel // p.shape[0])


@dataclass(frozen=True)
class FsdpBuffers:
    """FSDP's per-unit buffers on rank 0; a unit is a block index, or None for the root.

    ``grads``: the sharded gradient (one flat reduce-scatter output per unit); ``gathered``: the
    unsharded parameters (one padded allocation each); ``flat``: the flat all-gather buffer a
    prefetch holds; ``grads_full``: the unsharded gradients (one per trainable parameter);
    ``rs_input``: the flat reduce-scatter input, kept until the next unit's reduce-scatter.
    Each is a :class:`Part` without a label.
    """

    grads: dict[int | None, Part]
    gathered: dict[int | None, Part]
    flat: dict[int | None, Part]
    grads_full: dict[int | None, Part]
    rs_input: dict[int | None, Part]

    @property
    def all_grads(self) -> Part:
        """Every unit's sharded gradient."""
        return summed("flat sharded gradients, one per unit", self.grads.values())


def fsdp_buffers(
    params: list[Param], trainable: list[Param], pbytes: int, world: int
) -> FsdpBuffers:
    """Rank 0's buffers of each FSDP unit when ``params`` are sharded over ``world`` ranks."""
    units = {p.block for p in params}
    names = {p.name for p in trainable}

    def total(unit: int | None, per: bool, only_trainable: bool, numel) -> Part:
        chosen = [p for p in params if p.block == unit and (not only_trainable or p.name in names)]
        n = sum(numel(p) for p in chosen)
        value = sum(rounded(numel(p) * pbytes) for p in chosen) if per else rounded(n * pbytes)
        return Part("", value, each(n, pbytes, "trainable" if only_trainable else "params"))

    def padded(p: Param) -> int:
        return shard_numel(p, world) * world

    def shard(p: Param) -> int:
        return shard_numel(p, world)

    return FsdpBuffers(
        grads={u: total(u, False, True, shard) for u in units},
        gathered={u: total(u, True, False, padded) for u in units},
        flat={u: total(u, False, False, padded) for u in units},
        grads_full={u: total(u, True, True, lambda p: p.numel) for u in units},
        rs_input={u: total(u, False, True, padded) for u in units},
    )


def fsdp_moments(
    moments: list[Moment],
    fsdp: FsdpBuffers,
    spec: Spec,
    arch: Architecture,
    trainable: list[Param],
    blocks: dict[int, Block],
    stem: list[Part],
    precision: Precision,
    tokens: int,
    held: tuple[list[Part], int | None] = ([], None),
) -> list[Moment]:
    """Add FSDP's gathered parameters and unsharded gradients to each moment of the step.

    ``held``: the packed rows' masks the checkpointed blocks keep and the lowest checkpointed
    block (:func:`~freezegen.memory.analytic.activations.held_masks`): they outlive the end of
    the backward of every block above it."""
    masks, masks_until = held
    accum = spec.batch.grad_accum_steps > 1
    pbytes = precision.param_bytes
    all_shards = fsdp.all_grads
    top = arch.num_layers - 1
    # The root's unsharded gradients (head, final norm; a tied embedding's head part) stay
    # unsharded until the root's reduce-scatter at the end of backward.
    root = [p for p in trainable if p.block is None and p.kind != EMBEDDINGS]
    root_grads = [
        Part(
            "the root's unsharded gradients (final norm, head)",
            sum(rounded(p.numel * pbytes) for p in root),
            each(sum(p.numel for p in root), pbytes, "trainable"),
        ),
        *tied_head_grad(spec, arch, trainable, pbytes),
    ]

    def autocast_cache(below: int) -> list[Part]:
        """Autocast's 16-bit copies of the gathered weights of the checkpointed blocks under
        ``below``: until autocast exits, its cache keeps a low-precision copy of every gathered
        trainable matmul weight, checkpointed blocks' too (their saved activations do not count
        it); sharding does not shrink this."""
        if not precision.autocast:
            return []
        cached = [
            p
            for p in trainable
            if p.block in blocks
            and p.block < below
            and blocks[p.block].recompute > 0
            and p.kind in (ATTENTION, MLP)
            and len(p.shape) == 2
        ]
        if not cached:
            return []
        return [
            Part(
                "autocast cache: 16-bit copies of the checkpointed blocks' gathered weights",
                sum(rounded(p.numel * 2) for p in cached),
                ((sum(p.numel for p in cached), "weights"), (2, "B")),
            )
        ]

    def shards_above(block: int) -> Part:
        if accum:
            return all_shards
        return summed(
            f"sharded gradients of the blocks above {block}",
            (v for u, v in fsdp.grads.items() if u is not None and u > block),
        )

    order = sorted(blocks)
    h = arch.hidden_size
    # What the embeddings saved is alive through every block's forward; the head's autocast
    # copy, the rest of the stem, comes after the blocks.
    embedded = embeddings_saved(spec, arch, trainable, precision, tokens)
    out = []
    for c in moments:
        kind = c.kind
        gathered = [named(fsdp.gathered[None], "the root gathered (embeddings, norm, head)")]
        grads = list(c.gradients)
        acts = c.activations
        if kind in (MomentKind.FORWARD, MomentKind.LOSS_BACKWARD):
            # The loss runs inside the root's forward, while the last block's flat all-gather
            # result is still kept (freed by the next copy-out); the root's pre-backward
            # prefetches that block again before the loss's backward.
            gathered.append(named(fsdp.flat[top], f"block {top}'s all-gather buffer"))
        if kind is MomentKind.FORWARD:
            # Each block's forward all-gather comes first (the root's own, before block 0's,
            # holds less: its flat output and its parameters only).
            out.extend(
                all_gather_moment(
                    c, fsdp, i, blocks, embedded, autocast_cache(i), tokens, h, pbytes
                )
                for i in sorted(u for u in fsdp.flat if u is not None)
            )
            acts = (*acts, *autocast_cache(top + 1))
        elif kind is MomentKind.HEAD_BACKWARD:
            if top in fsdp.flat:
                gathered.append(named(fsdp.flat[top], f"block {top} prefetched"))
            grads = ([all_shards] if accum else []) + root_grads
        elif kind is MomentKind.BLOCK_BACKWARD:
            # Two moments of block i's backward: the MLP's elementwise backward (what it saved
            # still alive, its own gradients not yet) and its end (its input norm's backward:
            # every gradient of the block unsharded, what it saved gone).
            i = c.block
            assert i is not None
            # The block below is prefetched even when it runs no backward (frozen bottom).
            gathered.append(named(fsdp.gathered[i], f"block {i} gathered"))
            if i > 0:
                gathered.append(named(fsdp.flat[i - 1], f"block {i - 1} prefetched"))
            grads = [shards_above(i), *root_grads]
            if i < top:
                grads.append(named(fsdp.rs_input[i + 1], f"block {i + 1}'s reduce-scatter input"))
            out.append(
                moment(
                    MomentKind.BLOCK_BACKWARD_END,
                    i,
                    c.parameters + tuple(gathered),
                    [*grads, named(fsdp.grads_full[i], f"block {i}'s unsharded gradients")],
                    c.optimizer_states,
                    stem
                    + saved_parts(blocks, [b for b in order if b < i], tokens, h, pbytes)
                    + (masks if masks_until is not None and i > masks_until else []),
                    [norm_backward(f"block {i}'s input norm backward", arch, tokens)],
                )
            )
        elif kind is MomentKind.BACKWARD_END:
            grads = [all_shards, *root_grads]
            if 0 in fsdp.rs_input:
                grads.append(named(fsdp.rs_input[0], "block 0's reduce-scatter input"))
        elif kind is MomentKind.OPTIMIZER:
            gathered = []
        out.append(
            moment(
                kind,
                c.block,
                c.parameters + tuple(gathered),
                grads,
                c.optimizer_states,
                acts,
                c.temporaries,
            )
        )
    return out


def all_gather_moment(
    forward: Moment,
    fsdp: FsdpBuffers,
    block: int,
    blocks: dict[int, Block],
    embedded: list[Part],
    cached: list[Part],
    tokens: int,
    hidden: int,
    pbytes: int,
) -> Moment:
    """Block ``block``'s forward all-gather copy-out (the module docstring says what is alive):
    ``forward``'s shards, gradients and optimizer states, the root gathered, the previous unit's
    and this block's flat all-gather outputs and this block's unsharded parameters, beside what
    ``embedded`` (what the embeddings saved) and the blocks below saved, and ``cached``
    (autocast's copies of their weights)."""
    previous = block - 1 if block - 1 in fsdp.flat else None
    gathered = (
        named(fsdp.gathered[None], "the root gathered (embeddings, norm, head)"),
        named(
            fsdp.flat[previous],
            "the root's all-gather output, still referenced"
            if previous is None
            else f"block {previous}'s all-gather output, still referenced",
        ),
        replace(
            named(fsdp.flat[block], f"block {block}'s all-gather output"),
            note="its shards padded, times the world size, in the parameters' dtype",
        ),
        named(fsdp.gathered[block], f"block {block}'s unsharded parameters, copied out"),
    )
    below = sorted(b for b in blocks if b < block)
    return moment(
        MomentKind.BLOCK_ALL_GATHER,
        block,
        forward.parameters + gathered,
        forward.gradients,
        forward.optimizer_states,
        [*embedded, *saved_parts(blocks, below, tokens, hidden, pbytes), *cached]
        or zero("nothing is saved yet: nothing before this block trains"),
        (),
    )
