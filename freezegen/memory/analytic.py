"""The analytic estimator: a per-term model of one training step, in pure Python (no torch).

``freezegen lint`` calls this, so it must stay import-light. The terms follow what PyTorch keeps
alive at the peak of the steady-state (second) optimizer step:

* parameters, gradients (parameter dtype, trainable only), optimizer states (Adam/AdamW: two per
  trainable element; SGD with momentum: one; fused Adam keeps its step counters on the device);
* activations saved for backward, per block and token. The coefficients count the tensors each
  family's block saves (``_SAVED``): e.g. a GPT-2 block in fp32 keeps ten hidden-sized fp32
  tensors (40 bytes x hidden), its tanh-GELU five intermediate-sized ones (20 bytes x
  intermediate) and flash attention a log-sum-exp per head (4 bytes). They were counted from
  the operators and checked against the traced estimator. Under autocast a block also keeps a
  low-precision copy of each of its matmul weights (the autocast cache for trainable ones, the
  per-use cast for frozen ones). Eager attention adds the probabilities: ``per_head_s`` bytes
  per head and key position;
* blocks below the first block that receives a gradient keep nothing (autograd records nothing
  before the first tensor that requires grad); a checkpointed block keeps only its input, and one
  block is recomputed at a time in backward;
* the language-model loss path (logits, fp32 log-softmax and its gradients: ``b*s*vocab``);
* optimizer temporaries: foreach Adam one trainable-sized tensor (two with Adam's L2 decay),
  loop Adam two copies of the largest parameter, fused none;
* DDP adds the reducer's gradient buckets; FSDP shards parameters, gradients and optimizer state
  over the world size and gathers two blocks at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.arch import ArchitectureError, architecture_for
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import ATTENTION, MLP, Param, parameter_table
from freezegen.memory.estimate import Breakdown, EstimateError, MemoryEstimate, finish
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture
from freezegen.spec.selectors import parse_ranges

__all__ = ["estimate_analytic"]

BLOCK = 512


@dataclass(frozen=True)
class _Saved:
    """Bytes one block saves per token: ``per_h * hidden + per_f * intermediate + per_n * heads``,
    plus ``per_head_s * heads * seq_len`` with eager attention."""

    per_h: float
    per_f: float
    per_n: float
    per_head_s: float


# (family, "fp32" | "autocast") -> saved bytes per token and block (dropout on; see docstring).
_SAVED = {
    ("gpt2", "fp32"): _Saved(40, 20, 4, 12),
    ("gpt2", "autocast"): _Saved(40, 16, 4, 8),
    ("bert", "fp32"): _Saved(40, 8, 4, 12),
    ("bert", "autocast"): _Saved(44, 4, 4, 10),
    ("llama", "fp32"): _Saved(40, 16, 4, 4),
    ("llama", "autocast"): _Saved(50, 8, 4, 2),
}


def _round(n: float) -> int:
    n = int(n)
    return 0 if n <= 0 else -(-n // BLOCK) * BLOCK


def estimate_analytic(spec: Spec) -> MemoryEstimate:
    """Return the modelled per-device peak of the spec's steady-state optimizer step.

    Raises :class:`EstimateError` for a ``factory`` model (only tracing knows it) or a config
    that cannot be read.
    """
    if spec.model.factory is not None:
        raise EstimateError(
            "a factory model can only be measured, not modelled; use the traced estimate (--trace)"
        )
    try:
        arch = architecture_for(spec.model)
    except ArchitectureError as exc:
        raise EstimateError(str(exc)) from None
    assert arch is not None
    params = parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
    plan = plan_freeze(spec.freeze, params, arch.num_layers)
    trainable = plan.trainable
    if not trainable:
        raise EstimateError("the freeze section leaves no parameter to train")
    return _model(spec, arch, params, trainable, plan.first_trainable_block)


def _model(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    first_trainable_block: int | None,
) -> MemoryEstimate:
    pbytes = 2 if spec.precision == "bf16-pure" else 4
    autocast = spec.precision in ("fp16", "bf16")
    world = spec.hardware.world_size if spec.hardware else 1
    shard = world if spec.distributed.strategy == "fsdp" else 1
    b, s = spec.batch.micro_batch_size, spec.batch.seq_len
    tokens = b * s
    n_total = sum(p.numel for p in params)
    n_train = sum(p.numel for p in trainable)

    param_bytes = sum(_round(p.numel * pbytes / shard) for p in params)
    grad_bytes = sum(_round(p.numel * pbytes / shard) for p in trainable)
    opt_bytes, opt_temp = _optimizer_terms(spec, trainable, pbytes, shard)
    if spec.distributed.strategy == "ddp":
        grad_bytes += _round(n_train * pbytes)
    if shard > 1:
        # FSDP gathers the current block and prefetches the next one.
        block_numel = sum(p.numel for p in params if p.block == 0)
        param_bytes += 2 * _round(block_numel * pbytes)

    acts, recompute = _block_activations(
        spec, arch, params, trainable, first_trainable_block, pbytes, autocast, tokens
    )
    loss_fwd, loss_bwd = _loss_terms(spec, arch, tokens, autocast, pbytes)
    tail = _round(tokens * arch.hidden_size * 4 * 3)  # final norm in/out and its gradient
    grads_during = grad_bytes if spec.batch.grad_accum_steps > 1 else 0

    candidates = {
        "forward": Breakdown(param_bytes, grads_during, opt_bytes, acts + tail + loss_fwd, 0),
        "backward": Breakdown(
            param_bytes,
            grads_during,
            opt_bytes,
            acts + tail + _saved_log_softmax(spec, arch, tokens),
            loss_bwd + recompute,
        ),
        "backward-end": Breakdown(
            param_bytes,
            grad_bytes,
            opt_bytes,
            0,
            recompute + _tied_accumulation(spec, arch, trainable, pbytes),
        ),
        "optimizer": Breakdown(param_bytes, grad_bytes, opt_bytes, 0, opt_temp),
    }
    peak = max(candidates.values(), key=lambda c: c.total)
    return finish("analytic", spec, peak, n_train, n_total)


def _optimizer_terms(
    spec: Spec, trainable: list[Param], pbytes: int, shard: int
) -> tuple[int, int]:
    o = spec.optimizer
    sizes = [_round(p.numel * pbytes / shard) for p in trainable]
    total = sum(sizes)
    if o.name == "sgd":
        states = total if o.momentum > 0 else 0
        temp = total if o.weight_decay > 0 and o.implementation == "foreach" else 0
        if o.implementation == "loop" and o.weight_decay > 0:
            temp = max(sizes)
        return states, temp
    states = 2 * total
    if o.implementation == "fused":
        return states + BLOCK * len(trainable), 0
    if o.implementation == "loop":
        return states, 2 * max(sizes)
    temp = total * (2 if o.name == "adam" and o.weight_decay > 0 else 1)
    return states, temp


def _checkpointed(spec: Spec, num_layers: int) -> set[int]:
    ac = spec.checkpointing
    if ac is None:
        return set()
    layers = ac.layers
    if layers == "all":
        return set(range(num_layers))
    if isinstance(layers, str) and layers.startswith("every-"):
        return set(range(0, num_layers, int(layers.removeprefix("every-"))))
    chosen = parse_ranges(layers) if isinstance(layers, str) else layers
    return {i for i in chosen if i < num_layers}


def _block_activations(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    first_trainable_block: int | None,
    pbytes: int,
    autocast: bool,
    tokens: int,
) -> tuple[int, int]:
    """Return (bytes saved by all blocks, bytes of one block recomputed in backward)."""
    embeddings_train = any(p.block is None and p.kind == "embeddings" for p in trainable)
    if embeddings_train:
        first = 0
    elif first_trainable_block is None:
        return 0, 0
    else:
        first = first_trainable_block
    saved = _SAVED[(arch.family, "autocast" if autocast else "fp32")]
    scale = 0.5 if pbytes == 2 else 1.0
    s = spec.batch.seq_len
    per_token = (
        saved.per_h * arch.hidden_size
        + saved.per_f * arch.intermediate_size
        + saved.per_n * arch.num_heads
    ) * scale
    if spec.model.attention == "eager":
        per_token += saved.per_head_s * arch.num_heads * s * scale
    full = _round(per_token * tokens)
    weights = 0
    if autocast:
        weights = sum(
            _round(p.numel * 2)
            for p in params
            if p.block == first and p.kind in (ATTENTION, MLP) and len(p.shape) == 2
        )
    checkpointed = _checkpointed(spec, arch.num_layers)
    block_input = _round(tokens * arch.hidden_size * pbytes)
    total = 0
    for block in range(first, arch.num_layers):
        total += block_input if block in checkpointed else full + weights
    recompute = full + weights if checkpointed & set(range(first, arch.num_layers)) else 0
    return total, recompute


def _loss_terms(
    spec: Spec, arch: Architecture, tokens: int, autocast: bool, pbytes: int
) -> tuple[int, int]:
    """Return (forward peak, backward peak) bytes of the output head and loss."""
    if spec.model.head == "sequence-classification":
        return 0, 0
    logits = tokens * arch.vocab_size
    low = 2 if autocast else pbytes
    # logits in the compute dtype, an fp32 copy (unless already fp32), fp32 log-softmax.
    fwd = _round(logits * low) + (_round(logits * 4) if low != 4 else 0) + _round(logits * 4)
    # backward: the gradient of the log-softmax and the logits' fp32 gradient (the saved
    # log-softmax output itself is counted with the activations).
    bwd = 2 * _round(logits * 4)
    return fwd, bwd


def _saved_log_softmax(spec: Spec, arch: Architecture, tokens: int) -> int:
    if spec.model.head == "sequence-classification":
        return 0
    return _round(tokens * arch.vocab_size * 4)


def _tied_accumulation(spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int) -> int:
    """A tied, trainable embedding gets two gradients (head and lookup) summed at the end of
    backward: two extra vocab x hidden tensors are alive while they are added."""
    tied = spec.model.head == "causal-lm" and (
        arch.family in ("gpt2", "bert") or arch.tie_word_embeddings
    )
    if not tied or not any(p.kind == "embeddings" and p.block is None for p in trainable):
        return 0
    return 2 * _round(arch.vocab_size * arch.hidden_size * pbytes)
