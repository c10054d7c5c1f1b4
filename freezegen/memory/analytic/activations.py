"""The activations each block keeps for the backward, and the transients of its backward.

Blocks below the first block that receives a gradient keep nothing (autograd records nothing
before the first tensor that requires grad); a checkpointed block keeps only its input and
rebuilds its activations at the start of its own backward. Under autocast each block also keeps
a low-precision copy of each matmul weight (the autocast cache for trainable ones, the per-use
cast a frozen one's matmul saves).
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.arch.families import family_of
from freezegen.arch.params import ATTENTION, EMBEDDINGS, MLP, Param
from freezegen.memory.analytic.adapters import quantized_format
from freezegen.memory.analytic.int8 import int8_inputs
from freezegen.memory.analytic.operators import (
    Trains,
    activation_output_bytes,
    attention_records,
    block_per_token,
    linear_output_bytes,
    mlp_gradients,
    mlp_rows,
    norm_backward_tensors,
    packed_mask,
    packed_mask_bytes,
    rms_norm_unrecorded,
    shared_mask_bytes,
)
from freezegen.memory.analytic.parts import Part, rounded
from freezegen.memory.analytic.torchao import torchao_saved
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


@dataclass(frozen=True)
class Block:
    """What one block saves: ``act`` (tokens x ``per_token``, rounded), autocast's low-precision
    copies of its matmul weights (``weights`` bytes of ``weights_numel``), less what the first
    trainable block's input norm does not record (``skipped``, ``skipped_per_token``); a
    checkpointed block keeps only its ``input`` instead and rebuilds the rest in its backward,
    beside what its int8 matmuls keep all the same (``int8_per_token``, ``int8``:
    :mod:`~freezegen.memory.analytic.int8`). A torchao base's matmuls save its weights in the
    compute dtype (``dequantized`` bytes of ``dequantized_numel`` elements of
    ``dequantized_itemsize`` bytes: :mod:`~freezegen.memory.analytic.torchao`). With packed
    rows its sdpa keeps the mask as its bias (``mask`` bytes: ``mask_keys`` per token of
    ``mask_itemsize`` bytes, :func:`~freezegen.memory.analytic.operators.packed_mask`)."""

    per_token: float
    act: int
    weights: int
    weights_numel: int
    skipped_per_token: float
    skipped: int
    input: int | None
    int8_per_token: float = 0.0
    int8: int = 0
    dequantized: int = 0
    dequantized_numel: int = 0
    dequantized_itemsize: int = 0
    mask: int = 0
    mask_keys: int = 0
    mask_itemsize: int = 0
    mask_note: str = ""

    @property
    def full(self) -> int:
        return self.act + self.weights + self.dequantized + self.mask - self.skipped

    @property
    def saved(self) -> int:
        """Bytes kept from its forward to its backward."""
        return self.full if self.input is None else self.input + self.int8

    @property
    def recompute(self) -> int:
        """Bytes its recomputation rebuilds at the start of its backward (0 unless checkpointed)."""
        return 0 if self.input is None else self.full


def block_activations(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    first_trainable_block: int | None,
    precision: Precision,
    tokens: int,
    quantized: frozenset[str] = frozenset(),
) -> dict[int, Block]:
    """Return what each block that saves anything keeps (see :class:`Block`). ``trainable``
    holds the adapters' parameters too; ``quantized``: the base weights stored quantized."""
    embeddings_train = any(p.block is None and p.kind == EMBEDDINGS for p in trainable)
    if embeddings_train:
        first = 0
    elif first_trainable_block is None:
        return {}
    else:
        first = first_trainable_block
    h = arch.hidden_size
    base = {p.name for p in params}
    adapters = [p for p in trainable if p.name not in base]

    def matmul_weights(block: int) -> tuple[int, int]:
        """(bytes, numel) of the block's autocast weight copies: its linear weights (not a
        mixture of experts' fused 3-D weights, which run in grouped_mm, which autocast does
        not cast: operators.routed_mlp) and its adapters', but no quantized weight (its matmul
        dequantizes it and keeps nothing)."""
        if not precision.autocast:
            return 0, 0
        matmuls = [
            p
            for p in (*params, *adapters)
            if p.block == block
            and p.kind in (ATTENTION, MLP)
            and len(p.shape) == 2
            and p.name not in quantized
        ]
        return sum(rounded(p.numel * 2) for p in matmuls), sum(p.numel for p in matmuls)

    # The first trainable block's input does not require grad: a (pre-)RMSNorm records less.
    skipped = 0.0
    ops = family_of(arch).block
    if not embeddings_train and ops.norm.rms and ops.attention_norm is not None:
        skipped = rms_norm_unrecorded(precision, h)
    ac = spec.checkpointing
    checkpointed = set(ac.indices(arch.num_layers)) if ac is not None else set()
    # A checkpointed block keeps only its input (the residual stream's dtype).
    block_input = rounded(tokens * h * precision.param_bytes)
    # Packed rows: each block whose attention records keeps its sdpa's mask.
    mask = rounded(packed_mask_bytes(spec, precision)) if packed_mask(spec, arch) else 0
    repeated = (
        "grouped K/V, repeated to every head beside a mask, are in its B/token"
        if arch.kv_heads != arch.num_heads
        else ""
    )
    out = {}
    inside = Trains.by_block(trainable)
    # Blocks that train the same weights save the same bytes per token: computed once each.
    per_token_of: dict[
        tuple[frozenset[str], bool, bool, bool, bool],
        tuple[float, tuple[int, int], float, tuple[int, int, int]],
    ] = {}
    rank = spec.adapter.r if spec.adapter is not None else 0
    lora_dropout = spec.adapter.dropout if spec.adapter is not None else 0.0
    quantized_blocks = {p.block for p in params if p.name in quantized}
    fmt = quantized_format(spec) if quantized else None
    int8 = fmt is not None and not fmt.four_bit and fmt.library == "bitsandbytes"
    torchao = fmt is not None and fmt.library == "torchao"
    for block in range(first, arch.num_layers):
        paths = inside.get(block, frozenset())
        trains = Trains(paths, rank, lora_dropout, block in quantized_blocks)
        # The lowest block, fed no gradient, records nothing before its first trainable op:
        # when its attention trains nothing, autograd starts at the MLP.
        input_grad = block != first or embeddings_train
        quiet = not input_grad and not attention_records(ops, trains)
        key = (paths, trains.quantized, quiet, input_grad, block in checkpointed)
        if key not in per_token_of:
            per_token = block_per_token(spec, arch, precision, trains, quiet_attention=quiet)
            kept = 0.0
            if int8 and trains.quantized:
                # What bitsandbytes' int8 matmuls keep (analytic/int8.py), beyond what the
                # block saves or, checkpointed, beside its input.
                kept = int8_inputs(
                    spec,
                    arch,
                    precision,
                    trains,
                    input_grad=input_grad,
                    quiet_attention=quiet,
                    checkpointed=block in checkpointed,
                )
                if block not in checkpointed:
                    per_token, kept = per_token + kept, 0.0
            dequantized = (0, 0, 0)
            if torchao and trains.quantized:
                # The weight copies torchao's matmuls save (analytic/torchao.py).
                dequantized = torchao_saved(
                    arch,
                    precision,
                    [p for p in params if p.block == block and p.name in quantized],
                    trains,
                    input_grad=input_grad,
                    quiet_attention=quiet,
                )
            per_token_of[key] = (per_token, matmul_weights(block), kept, dequantized)
        per_token, (weights, weights_numel), kept, dequantized = per_token_of[key]
        skip = skipped if block == first and not quiet else 0
        out[block] = Block(
            per_token,
            rounded(per_token * tokens),
            weights,
            weights_numel,
            skip,
            rounded(skip * tokens),
            block_input if block in checkpointed else None,
            kept,
            rounded(kept * tokens),
            *dequantized,
            *(
                (mask, spec.batch.seq_len, precision.matmul_bytes, repeated)
                if mask and not quiet
                else ()
            ),
        )
    return out


def full_parts(blk: Block, name: str, verb: str, count: int, tokens: int) -> list[Part]:
    """The parts of ``count`` equal blocks' (``name``) full saved activations."""
    times = ((count, "blocks"),) if count > 1 else ()
    parts = [
        Part(
            f"{name} {verb}",
            count * blk.act,
            (*times, (tokens, "tokens"), (blk.per_token, "B/token")),
        )
    ]
    if blk.weights:
        parts.append(
            Part(
                f"{name}'s 16-bit matmul weight copies (autocast)",
                count * blk.weights,
                (*times, (blk.weights_numel, "weights"), (2, "B")),
            )
        )
    if blk.dequantized:
        parts.append(
            Part(
                f"{name}'s torchao weights in the compute dtype (mm saves them)",
                count * blk.dequantized,
                (*times, (blk.dequantized_numel, "weights"), (blk.dequantized_itemsize, "B")),
                "and, under autocast, the row scales mul saves",
            )
        )
    if blk.mask:
        parts.append(
            Part(
                f"{name}'s attention mask (packed rows: sdpa keeps it as its bias)",
                count * blk.mask,
                (
                    *times,
                    (tokens, "tokens"),
                    (blk.mask_keys, "key positions"),
                    (blk.mask_itemsize, "B"),
                ),
                blk.mask_note,
            )
        )
    if blk.skipped:
        parts.append(
            Part(
                f"what {name}'s input norm does not record (its input needs no grad)",
                -count * blk.skipped,
                (*times, (tokens, "tokens"), (blk.skipped_per_token, "B/token")),
            )
        )
    return parts


def saved_parts(
    blocks: dict[int, Block], chosen: list[int], tokens: int, hidden: int, pbytes: int
) -> list[Part]:
    """What the ``chosen`` blocks keep for their backward, runs of equal blocks together."""
    groups: list[list[int]] = []
    for block in chosen:
        if (
            groups
            and groups[-1][-1] == block - 1
            and _kept(blocks[groups[-1][0]]) == _kept(blocks[block])
        ):
            groups[-1].append(block)
        else:
            groups.append([block])
    parts = []
    for g in groups:
        blk, n = blocks[g[0]], len(g)
        name = f"block {g[0]}" if n == 1 else f"blocks {g[0]}-{g[-1]}"
        if blk.input is None:
            parts += full_parts(blk, name, "saved", n, tokens)
        else:
            times = ((n, "blocks"),) if n > 1 else ()
            parts.append(
                Part(
                    f"{name} (checkpointed) input",
                    n * blk.input,
                    (*times, (tokens, "tokens"), (hidden, "hidden"), (pbytes, "B")),
                )
            )
            if blk.int8:
                parts.append(
                    Part(
                        f"{name}'s int8 matmul inputs (not dropped by checkpointing)",
                        n * blk.int8,
                        (*times, (tokens, "tokens"), (blk.int8_per_token, "B/token")),
                        "bitsandbytes keeps each in its autograd context",
                    )
                )
    return parts


def held_masks(
    spec: Spec, arch: Architecture, blocks: dict[int, Block], tokens: int
) -> tuple[list[Part], int | None]:
    """The packed rows' boolean masks (:func:`~freezegen.memory.analytic.operators.packed_mask`)
    that checkpointed blocks keep alive, and the lowest checkpointed block, whose backward is
    the last they live through: a checkpointed block keeps its arguments, the mask among them,
    for its recomputation. Without checkpointing transformers frees them when the decoder
    stack returns, before the logits (([], None)). gemma3 builds two (a full and a
    sliding-window one); both are counted, as when each kind has a checkpointed block."""
    checkpointed = [i for i in sorted(blocks) if blocks[i].input is not None]
    if not checkpointed or not packed_mask(spec, arch):
        return [], None
    count = family_of(arch).attention_masks
    times = ((count, "masks"),) if count > 1 else ()
    s = spec.batch.seq_len
    part = Part(
        "the packed rows' attention masks, kept by the checkpointed blocks"
        if count > 1
        else "the packed rows' attention mask, kept by the checkpointed blocks",
        count * rounded(shared_mask_bytes(spec)),
        (*times, (tokens, "tokens"), (s, "key positions"), (1, "B")),
        "bool",
    )
    return [part], checkpointed[0]


def _kept(blk: Block) -> object:
    """What decides whether two neighbouring blocks are shown together."""
    return blk if blk.input is None else (blk.input, blk.int8)


def backward_transient(
    arch: Architecture, precision: Precision, tokens: int, quantized: bool = False
) -> list[Part]:
    """Gradients alive inside one block's backward on top of what it saved: the residual
    stream's gradient and, at the MLP's elementwise backward, the gradients of the product's
    inputs (:func:`mlp_gradients`). The product's backward builds them in its output's dtype
    (the engine casts each to its input's dtype only afterwards). Beside them lies the gradient
    of the product's output, where the down projection's saved input was until its backward
    freed it: the same size unless the output was promoted (tanh-GELU under autocast: a fp32
    gradient where the saved input was its low-precision cast), when the difference is added."""
    activation = family_of(arch).block.activation
    f_grads = mlp_gradients(activation)
    h, f = arch.hidden_size, arch.intermediate_size
    out_bytes = activation_output_bytes(precision, activation)
    times = ((f_grads, "tensors"),) if f_grads > 1 else ()
    rows, nbytes = mlp_rows(arch, precision, tokens)
    if quantized and rows == tokens:
        # The product's inputs are quantized linears' outputs (operators.linear_output_bytes).
        nbytes = max(nbytes, linear_output_bytes(precision, quantized))
    per_row = ((tokens, "tokens"),) if rows == tokens else ((rows, "routed rows"),)
    parts = [
        Part(
            "residual gradient",
            rounded(tokens * h * precision.residual_bytes),
            ((tokens, "tokens"), (h, "hidden"), (precision.residual_bytes, "B")),
        ),
        Part(
            "MLP gradients" if f_grads > 1 else "MLP gradient",
            f_grads * rounded(rows * f * nbytes),
            (*times, *per_row, (f, "intermediate"), (nbytes, "B")),
        ),
    ]
    promoted = out_bytes - precision.matmul_bytes
    if promoted:
        parts.append(
            Part(
                "the activation output's fp32 gradient, beyond the down projection's freed input",
                rounded(tokens * f * out_bytes) - rounded(tokens * f * precision.matmul_bytes),
                ((tokens, "tokens"), (f, "intermediate"), (promoted, "B")),
            )
        )
    return parts


def norm_backward(label: str, arch: Architecture, tokens: int) -> Part:
    """A norm's backward (see :func:`norm_backward_tensors`)."""
    count = norm_backward_tensors(family_of(arch).block.norm)
    return Part(
        label,
        count * rounded(tokens * arch.hidden_size * 4),
        ((count, "fp32 tensors"), (tokens, "tokens"), (arch.hidden_size, "hidden"), (4, "B")),
    )
