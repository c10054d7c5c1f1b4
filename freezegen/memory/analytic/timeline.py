"""The moments of one steady-state step, in order, each term as the parts it sums.

forward (everything saved, the logits and the loss), the loss's backward, the final norm's
backward (after the head's), each block's backward (the gradients of everything above it, what
the blocks below saved, its own (recomputed) activations and the gradients alive in its MLP
backward), the end of the backward (every gradient exists) and the optimizer step. DDP and FSDP
add their buffers to each moment (:mod:`.ddp`, :mod:`.fsdp`); FSDP also adds each block's
forward all-gather, before the end of the forward.
"""

from __future__ import annotations

from dataclasses import replace

from freezegen.arch.families import family_of
from freezegen.arch.freeze import FreezePlan
from freezegen.memory.analytic.activations import (
    backward_transient,
    block_activations,
    full_parts,
    held_masks,
    norm_backward,
    saved_parts,
)
from freezegen.memory.analytic.adapters import adapted_parameters, quantized_backward
from freezegen.memory.analytic.ddp import with_reducer_buckets
from freezegen.memory.analytic.fsdp import fsdp_buffers, fsdp_moments, shard_numel
from freezegen.memory.analytic.gradients import (
    grad_suffix,
    grads_above,
    tied_accumulation,
    tied_head_grad,
)
from freezegen.memory.analytic.loss import loss_parts, saved_outside_blocks
from freezegen.memory.analytic.operators import head_trains, linear_inputs
from freezegen.memory.analytic.optimizer import optimizer_parts
from freezegen.memory.analytic.parts import (
    Moment,
    MomentKind,
    Part,
    Parts,
    Step,
    each,
    matrix,
    moment,
    rounded,
    zero,
)
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def step_moments(spec: Spec, arch: Architecture, plan: FreezePlan) -> Step:
    """Return every moment of the spec's step under ``plan`` (its trainable parameters, the
    adapters' included, must not be empty)."""
    params, trainable = plan.params, plan.trainable
    first_trainable_block = plan.first_trainable_block
    adapters = list(plan.adapter.params) if plan.adapter is not None else []
    precision = Precision(spec.precision)
    pbytes = precision.param_bytes
    world = spec.hardware.world_size if spec.hardware else 1
    shard = world if spec.distributed.strategy == "fsdp" else 1
    b, s = spec.batch.micro_batch_size, spec.batch.seq_len
    tokens = b * s
    h = arch.hidden_size
    n_adapters = sum(p.numel for p in adapters)
    n_total = sum(p.numel for p in params) + n_adapters
    n_train = sum(p.numel for p in trainable)
    accum = spec.batch.grad_accum_steps

    # FSDP2 shards the adapters with the rest of their block's unit: each lora_A / lora_B is
    # one more (small) parameter of the unit, split on dim 0, gathered with the frozen base
    # weights beside it for the unit's forward and backward, its gradient reduce-scattered.
    units = [*params, *adapters]
    fsdp = fsdp_buffers(units, trainable, pbytes, shard) if shard > 1 else None
    if fsdp is not None:
        param_parts = [
            Part(
                "rank 0's shards",
                sum(rounded(shard_numel(p, shard) * pbytes) for p in params),
                ((sum(shard_numel(p, shard) for p in params), "params"), (pbytes, "B")),
                f"{precision.param_dtype}; {n_total - n_adapters:,} split over "
                f"{shard} ranks, dim 0 padded",
            )
        ]
        if adapters:
            param_parts.append(
                Part(
                    "rank 0's shards of the LoRA adapters (lora_A, lora_B)",
                    sum(rounded(shard_numel(p, shard) * pbytes) for p in adapters),
                    ((sum(shard_numel(p, shard) for p in adapters), "params"), (pbytes, "B")),
                    f"r={spec.adapter.r if spec.adapter else 0}, {precision.param_dtype}; "
                    f"{n_adapters:,} split over {shard} ranks, in their blocks' units",
                )
            )
        grads_all = fsdp.all_grads
    else:
        param_parts = [
            Part(
                "",
                sum(rounded(p.numel * pbytes) for p in params),
                each(n_total, pbytes),
                precision.param_dtype,
            )
        ]
        if plan.quantized or adapters:
            param_parts = adapted_parameters(spec, arch, plan, precision)
        grads_all = Part(
            "",
            sum(rounded(p.numel * pbytes) for p in trainable),
            each(n_train, pbytes, "trainable"),
        )
    states, opt_temp = optimizer_parts(spec, trainable, pbytes, shard)
    if accum > 1:
        grads_during = [replace(grads_all, note=f"accumulated over {accum} micro-steps")]
    else:
        grads_during = list(zero("none exist before the backward"))

    blocks = block_activations(
        spec, arch, params, trainable, first_trainable_block, precision, tokens, plan.quantized
    )
    order = sorted(blocks)
    saved_all = saved_parts(blocks, order, tokens, h, pbytes)
    # Packed rows under checkpointing: the shared masks live until the lowest checkpointed
    # block's backward.
    masks, masks_until = held_masks(spec, arch, blocks, tokens)
    saved_all += masks
    head, stem = saved_outside_blocks(spec, arch, trainable, precision, tokens)
    loss_fwd, saved_log_softmax, loss_bwd = loss_parts(spec, arch, tokens, precision)
    tied = tied_accumulation(spec, arch, trainable, pbytes)
    tied_sum = []
    if tied:
        tied_sum = [
            Part(
                "the tied embedding's two gradients, summed",
                tied,
                ((2, "gradients"), *matrix(arch, pbytes)),
            )
        ]
    freed = zero("everything saved for the backward is freed")

    def common(
        kind: MomentKind, grads: Parts, acts: Parts, temps: Parts, block: int | None = None
    ) -> Moment:
        return moment(kind, block, param_parts, grads, states, acts, temps)

    moments = [
        common(MomentKind.FORWARD, grads_during, [*saved_all, head, *stem, *loss_fwd], ()),
        common(
            MomentKind.LOSS_BACKWARD,
            grads_during,
            [*saved_all, head, *stem, *saved_log_softmax],
            loss_bwd,
        ),
        common(MomentKind.BACKWARD_END, [grads_all], freed, tied_sum),
        common(MomentKind.OPTIMIZER, [grads_all], freed, opt_temp),
    ]
    # The final norm's backward, before any block's: everything saved is still alive.
    # The output projection's backward has run: its saved input is gone.
    head_input = []
    if not family_of(arch).head.transform and head_trains(spec, arch, trainable):
        head_input = [
            Part(
                "the head's input, freed by its backward",
                -rounded(linear_inputs(precision, h, 1) * tokens),
                ((tokens, "tokens"), (h, "hidden"), (precision.matmul_bytes, "B")),
            )
        ]
    suffix = grad_suffix(arch, trainable, pbytes, shard)
    tied_grad = tied_head_grad(spec, arch, trainable, pbytes)
    moments.append(
        common(
            MomentKind.HEAD_BACKWARD,
            grads_during
            if accum > 1
            else grads_above(arch, arch.num_layers, pbytes, suffix, tied_grad),
            [*saved_all, head, *stem, *head_input],
            [norm_backward("the final norm's backward", arch, tokens)],
        )
    )
    # Each block's backward: the gradients of everything above it exist, the blocks below
    # still hold what they saved, a checkpointed block has rebuilt its activations.
    transient = backward_transient(arch, precision, tokens, bool(plan.quantized))
    if plan.quantized:
        transient = max(
            transient,
            quantized_backward(spec, arch, plan, precision, tokens),
            key=lambda parts: sum(p.value for p in parts),
        )
    for block in order:
        blk = blocks[block]
        above = grads_during if accum > 1 else grads_above(arch, block, pbytes, suffix, tied_grad)
        recompute = (
            [] if blk.input is None else full_parts(blk, f"block {block}", "recomputed", 1, tokens)
        )
        kept = saved_parts(blocks, [i for i in order if i <= block], tokens, h, pbytes)
        if masks_until is not None and block >= masks_until:
            kept += masks
        moments.append(
            common(MomentKind.BLOCK_BACKWARD, above, stem + kept, recompute + transient, block)
        )
    if fsdp is not None:
        moments = fsdp_moments(
            moments,
            fsdp,
            spec,
            arch,
            trainable,
            blocks,
            stem,
            precision,
            tokens,
            held=(masks, masks_until),
        )
    if spec.distributed.strategy == "ddp":
        moments = with_reducer_buckets(moments, n_train, pbytes)
    return Step(tuple(moments), n_train, n_total)
