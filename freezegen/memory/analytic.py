"""The analytic estimator: a per-term model of one training step, in pure Python (no torch).

``freezegen lint`` calls this, so it must stay import-light. The terms follow what PyTorch keeps
alive at each moment of the steady-state (second) optimizer step, and the peak is the largest:

* parameters, gradients (parameter dtype, trainable only), optimizer states (Adam/AdamW: two per
  trainable element; SGD with momentum: one; fused Adam keeps its step counters on the device);
* activations saved for backward, counted tensor by tensor from the operators of each family's
  Hugging Face block (``_block_per_token``, ``_head_per_token``, ``_stem_per_token``; each term
  says which tensors and which dtype). Nothing is fitted: the traced estimator reproduces them
  to the byte at reduced size. What changes them: the precision mode (``_Dtypes``: under autocast
  every linear saves its own low-precision cast of its input, the residual stream stays fp32,
  and CUDA runs layer_norm / softmax / pow in fp32); which weights of a block train (a linear
  whose weight is frozen does not save its input; an RMSNorm whose weight is frozen does not
  save the normalised x; a fully frozen block runs dropout in eval()); sdpa (q, k, v, output,
  log-sum-exp, the decoders' (b, 1, s, s) mask) vs eager (the probabilities); dropout (bool
  masks). Under autocast each block also keeps a low-precision copy of each matmul weight (the
  autocast cache for trainable ones, the per-use cast a frozen one's matmul saves);
* blocks below the first block that receives a gradient keep nothing (autograd records nothing
  before the first tensor that requires grad); a checkpointed block keeps only its input and
  rebuilds its activations at the start of its own backward;
* the language-model loss path (logits, fp32 log-softmax and its gradients: ``b*s*vocab``);
* each block's backward: gradients of everything above it, what the blocks below saved, its own
  (recomputed) activations and the gradients alive in its MLP backward — the peak with
  checkpointing or without a large vocabulary;
* optimizer temporaries: foreach Adam one trainable-sized tensor list (Adam's L2 decay too),
  loop Adam two copies of the largest parameter, fused none;
* DDP adds the reducer's gradient buckets; FSDP shards parameters, gradients and optimizer state
  over the world size and gathers two blocks at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from freezegen.arch import ArchitectureError, architecture_for
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import ATTENTION, EMBEDDINGS, HEAD, MLP, Param, parameter_table
from freezegen.memory.estimate import Breakdown, EstimateError, MemoryEstimate, finish
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture
from freezegen.spec.selectors import parse_ranges

__all__ = ["estimate_analytic"]

BLOCK = 512


@dataclass(frozen=True)
class _Dtypes:
    """Element sizes of what a block saves, by precision mode.

    ``mm``: matmul outputs and the (cast) inputs a matmul saves; ``res``: the residual stream
    (fp32 under autocast: the fp32 embedding output plus a low-precision branch promotes to
    fp32); ``autocast``: every linear casts its activation input itself (one copy per consumer
    linear, not cached) and CUDA runs layer_norm, softmax and pow in fp32; ``pure``: bf16-pure.
    """

    mm: int
    res: int
    autocast: bool
    pure: bool


def _dtypes(precision: str) -> _Dtypes:
    if precision in ("fp16", "bf16"):
        return _Dtypes(mm=2, res=4, autocast=True, pure=False)
    if precision == "bf16-pure":
        return _Dtypes(mm=2, res=2, autocast=False, pure=True)
    return _Dtypes(mm=4, res=4, autocast=False, pure=False)


def _dropout_p(spec: Spec, arch: Architecture) -> float:
    return arch.dropout if spec.model.dropout is None else spec.model.dropout


def _linear_inputs(d: _Dtypes, h: int, consumers: int) -> float:
    """A (norm) output read by ``consumers`` linears: one shared tensor, or one cast each."""
    return (consumers * 2 if d.autocast else d.mm) * h


def _eager_probs(d: _Dtypes, softmax_bytes: int, dropout: bool) -> float:
    """Per head and key position: the softmax output (saved by softmax backward), then either
    the dropout output and its bool mask, or the value-dtype copy that the matmul saves."""
    if dropout:
        return softmax_bytes + d.mm + 1
    return softmax_bytes + (d.mm if d.mm != softmax_bytes else 0)


class _Trains:
    """Which weights of one block train. A linear saves its input only when its weight trains
    (the input's gradient needs only the weight); a fully frozen block runs its dropout in
    eval() (the generated script does), so it draws no masks."""

    def __init__(self, block: int | None, trainable: list[Param] | None) -> None:
        self.names = None if trainable is None else {p.name for p in trainable if p.block == block}
        self.any = self.names is None or bool(self.names)

    def __call__(self, module: str) -> bool:
        if self.names is None:
            return True
        return any(
            n.endswith(f".{module}.weight") and not n.endswith(f".attention.{module}.weight")
            for n in self.names
        )

    def count(self, *modules: str) -> int:
        return sum(self(m) for m in modules)


_ALL = _Trains(None, None)


def _inputs(d: _Dtypes, h: int, trains: _Trains, *modules: str) -> float:
    """A tensor read by the linears ``modules``: kept once if any of them trains, or one cast
    per training linear under autocast."""
    consumers = trains.count(*modules)
    if d.autocast:
        return consumers * 2 * h
    return d.mm * h if consumers else 0


def _block_per_token(spec: Spec, arch: Architecture, d: _Dtypes, trains: _Trains = _ALL) -> float:
    """Bytes one (not checkpointed) block saves per token, including its input.

    Counted from the operators of the Hugging Face blocks (the traced estimator checks it):
    """
    h, f, n, s = arch.hidden_size, arch.intermediate_size, arch.num_heads, spec.batch.seq_len
    drop = _dropout_p(spec, arch) > 0 and trains.any
    eager = spec.model.attention == "eager"
    # Attention core. sdpa saves q, k, v (GQA keys/values repeated to all heads) and its output
    # (also the o_proj input) in the matmul dtype, a fp32 log-sum-exp per head and, for the
    # causal decoders, the (b, 1, s, s) additive mask in the matmul dtype. Flash/efficient
    # kernels drop inside (a seed only). Eager saves the same four hidden-sized tensors (as
    # contiguous copies) plus the probabilities.
    out_proj = {"gpt2": "attn.c_proj", "bert": "attention.output.dense", "llama": "o_proj"}[
        arch.family
    ]
    attn = 3 * h * d.mm + (h * d.mm if not eager or trains(out_proj) else 0)
    if eager:
        softmax = 4 if (arch.family == "llama" or d.autocast) else d.mm
        attn += n * s * _eager_probs(d, softmax, drop)
    else:
        attn += 4 * n + (s * d.mm if arch.family in ("gpt2", "llama") else 0)
    masks = 2 * h if drop else 0  # two residual dropouts: bool masks
    if arch.family == "gpt2":
        # Pre-LN: both LayerNorms save their input (block input, mid residual: res dtype) and
        # mean/rstd (2 x 4 bytes); each output feeds one linear (c_attn, c_fc).
        norms = (
            2 * h * d.res + 2 * 8 + _inputs(d, h, trains, "c_attn") + _inputs(d, h, trains, "c_fc")
        )
        # tanh-GELU 0.5*x*(1+tanh(c*(x+0.044715*x^3))): pow saves x, the final mul saves 0.5*x and
        # 1+tanh, tanh saves its output, c_proj saves the product: five f-sized tensors. Under
        # autocast pow runs in fp32 (a fp32 copy of x), which promotes tanh, 1+tanh and the
        # product to fp32; 0.5*x stays low and c_proj saves its own cast.
        mlp = f * (12 + d.mm) if d.autocast else 4 * f * d.mm
        mlp += (2 if d.autocast else d.mm) * f if trains("mlp.c_proj") else 0
        return attn + masks + norms + mlp
    if arch.family == "bert":
        # Post-LN. The block input (an LN output) is saved by q, k, v (one cast each under
        # autocast); both residual adds are saved by their LayerNorm (res dtype) with mean/rstd;
        # the attention LN output feeds the intermediate dense. Exact GELU saves its input and
        # the output dense its output: two f-sized tensors.
        norms = (
            _inputs(d, h, trains, "query", "key", "value")
            + 2 * h * d.res
            + 2 * 8
            + _inputs(d, h, trains, "intermediate.dense")
        )
        mlp = f * d.mm + (f * d.mm if trains("output.dense") else 0)
        return attn + masks + norms + mlp
    # llama/mistral/qwen2: RMSNorm in Python. x.to(fp32) (a copy under bf16-pure), pow saves it
    # (fp32/autocast: the residual itself), rsqrt (4 bytes) and the normalised x (fp32; bf16-pure
    # saves its bf16 cast as well) are saved for the weight multiply, whose output feeds q, k, v
    # (three casts under autocast) and gate, up (two).
    norms = (
        _rms_norm(d, h, trains("input_layernorm"))
        + _rms_norm(d, h, trains("post_attention_layernorm"))
        + _inputs(d, h, trains, "q_proj", "k_proj", "v_proj")
        + _inputs(d, h, trains, "gate_proj", "up_proj")
    )
    # SwiGLU: gate and up outputs, silu(gate) (saved by the product), the product (down_proj
    # input).
    mlp = 3 * f * d.mm + (f * d.mm if trains("down_proj") else 0)
    # (llama-style blocks have no residual dropout: attention_dropout only.)
    return attn + norms + mlp


def _head_per_token(spec: Spec, arch: Architecture, d: _Dtypes, trainable: list[Param]) -> float:
    """Bytes saved per token after the last block, before the logits: the final norm / head
    transform (the last block's output is saved here). A frozen output projection (a tied head
    with frozen embeddings) does not keep its input."""
    h = arch.hidden_size
    head_input = _linear_inputs(d, h, 1) if _head_trains(spec, arch, trainable) else 0
    if arch.family == "gpt2":
        # ln_f saves its input and mean/rstd; its output feeds the head (or the score layer).
        return h * d.res + 8 + head_input
    if arch.family == "bert":
        if spec.model.head == "sequence-classification":
            # The pooler reads the [CLS] row: a view that keeps the whole output alive (fp32/
            # pure), or a cast of the row alone (autocast).
            return 0 if d.autocast else h * d.mm
        # transform: dense (saves its input) -> gelu (saves dense out) -> LayerNorm (saves the
        # gelu output, a fp32 copy under autocast, and mean/rstd) -> decoder (saves LN out).
        return (
            _linear_inputs(d, h, 1)
            + h * d.mm
            + h * (4 if d.autocast else d.mm)
            + 8
            + (_linear_inputs(d, h, 1))
        )
    return _rms_norm(d, h, True) + head_input


def _head_trains(spec: Spec, arch: Architecture, trainable: list[Param]) -> bool:
    """Whether the output projection's weight trains (a tied head trains with the embeddings)."""
    tied = spec.model.head == "causal-lm" and (
        arch.family == "gpt2" or (arch.family == "llama" and arch.tie_word_embeddings)
    )
    return any(p.kind == HEAD for p in trainable) or (
        tied and any(p.kind == EMBEDDINGS and p.block is None for p in trainable)
    )


def _rms_norm(d: _Dtypes, h: int, weight_trains: bool) -> float:
    """RMSNorm's saved bytes per token, its input included (its output is counted with the
    linears reading it): pow and the rsqrt multiply keep the fp32 input (a copy under
    bf16-pure, else the residual itself) and rsqrt; the weight multiply keeps the normalised
    x (fp32; its bf16 cast under bf16-pure) only when the weight trains."""
    kept = 4 + (4 * h if d.pure else d.res * h)
    if weight_trains:
        kept += 2 * h if d.pure else 4 * h
    return kept


def _stem_per_token(arch: Architecture, d: _Dtypes, dropout: bool) -> float:
    """Bytes the trainable embeddings save per token (the embedding output itself is the first
    block's input): BERT's embedding LayerNorm input and stats, the embedding dropout mask."""
    h = arch.hidden_size
    mask = h if dropout else 0
    if arch.family == "bert":
        return h * d.res + 8 + mask
    return mask


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
    if shard > 1:
        # FSDP gathers the current block and prefetches the next one.
        block_numel = sum(p.numel for p in params if p.block == 0)
        param_bytes += 2 * _round(block_numel * pbytes)

    blocks = _block_activations(
        spec, arch, params, trainable, first_trainable_block, pbytes, autocast, tokens
    )
    acts = sum(saved for saved, _ in blocks.values())
    loss_fwd, loss_bwd = _loss_terms(spec, arch, tokens, autocast, pbytes)
    tail = _tail(spec, arch, params, trainable, autocast, tokens)
    grads_during = grad_bytes if spec.batch.grad_accum_steps > 1 else 0

    candidates = {
        "forward": Breakdown(param_bytes, grads_during, opt_bytes, acts + tail + loss_fwd, 0),
        "loss-backward": Breakdown(
            param_bytes,
            grads_during,
            opt_bytes,
            acts + tail + _saved_log_softmax(spec, arch, tokens),
            loss_bwd,
        ),
        "backward-end": Breakdown(
            param_bytes,
            grad_bytes,
            opt_bytes,
            0,
            _tied_accumulation(spec, arch, trainable, pbytes),
        ),
        "optimizer": Breakdown(param_bytes, grad_bytes, opt_bytes, 0, opt_temp),
    }
    # The final norm's backward, before any block's: everything saved is still alive. Python
    # RMSNorm's backward builds five fp32 hidden-sized tensors (the output's gradient, the
    # normalised x's, the mean's expanded and divided gradient, pow's 2*x and its product);
    # fused LayerNorm backward two (gradient in and out).
    # The output projection's backward has run: its saved input is gone.
    norm_grads = 5 if arch.family == "llama" else 2
    head_input = 0
    if arch.family != "bert" and _head_trains(spec, arch, trainable):
        head_input = _round(_linear_inputs(_dtypes(spec.precision), arch.hidden_size, 1) * tokens)
    candidates["head-backward"] = Breakdown(
        param_bytes,
        grads_during or _grads_above(spec, arch, trainable, arch.num_layers, pbytes, shard),
        opt_bytes,
        acts + tail - head_input,
        norm_grads * _round(tokens * arch.hidden_size * 4),
    )
    # Each block's backward: the gradients of everything above it exist, the blocks below
    # still hold what they saved, a checkpointed block has rebuilt its activations.
    stem = tail - _round(_head_per_token(spec, arch, _dtypes(spec.precision), trainable) * tokens)
    transient = _backward_transient(spec, arch, tokens)
    below = 0
    for block in sorted(blocks):
        saved, recompute = blocks[block]
        above = grads_during or _grads_above(spec, arch, trainable, block, pbytes, shard)
        candidates[f"backward-block-{block}"] = Breakdown(
            param_bytes, above, opt_bytes, stem + below + saved, recompute + transient
        )
        below += saved
    if spec.distributed.strategy == "ddp":
        # The reducer's gradient buckets (gradient_as_bucket_view=False) live all step.
        bucket = _round(n_train * pbytes)
        candidates = {
            k: Breakdown(
                c.parameters,
                c.gradients + bucket,
                c.optimizer_states,
                c.activations,
                c.temporaries,
            )
            for k, c in candidates.items()
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
    # foreach: torch._foreach_sqrt(exp_avg_sq) (one trainable-sized list). Adam's L2 decay
    # builds grad + wd * param first, but deletes it before the sqrt: still one list at a time.
    return states, total


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
) -> dict[int, tuple[int, int]]:
    """Return, per block that saves anything, (bytes it keeps from its forward to its backward,
    bytes its recomputation rebuilds at the start of its backward: 0 unless checkpointed)."""
    embeddings_train = any(p.block is None and p.kind == "embeddings" for p in trainable)
    if embeddings_train:
        first = 0
    elif first_trainable_block is None:
        return {}
    else:
        first = first_trainable_block
    d = _dtypes(spec.precision)
    weights = 0
    if autocast:
        weights = sum(
            _round(p.numel * 2)
            for p in params
            if p.block == first and p.kind in (ATTENTION, MLP) and len(p.shape) == 2
        )
    full = {
        block: _round(_block_per_token(spec, arch, d, _Trains(block, trainable)) * tokens) + weights
        for block in range(first, arch.num_layers)
    }
    if not embeddings_train and arch.family == "llama":
        # The first trainable block's input does not require grad: RMSNorm's pow and rsqrt
        # multiply record nothing (its input / fp32 copy and rsqrt are not kept).
        h = arch.hidden_size
        full[first] -= _round(((4 * h if d.pure else d.res * h) + 4) * tokens)
    checkpointed = _checkpointed(spec, arch.num_layers)
    # A checkpointed block keeps only its input (the residual stream's dtype).
    block_input = _round(tokens * arch.hidden_size * pbytes)
    return {
        block: (block_input, full[block]) if block in checkpointed else (full[block], 0)
        for block in range(first, arch.num_layers)
    }


def _backward_transient(spec: Spec, arch: Architecture, tokens: int) -> int:
    """Gradients alive inside one block's backward on top of what it saved: the residual
    stream's gradient and, at the MLP's elementwise backward (where the block's saved tensors
    are still all alive), the gradients of its two inputs (gated / tanh-GELU: act and up,
    0.5*x and 1+tanh) or one (exact GELU)."""
    d = _dtypes(spec.precision)
    f_grads = 1 if arch.family == "bert" else 2
    return _round(tokens * arch.hidden_size * d.res) + f_grads * _round(
        tokens * arch.intermediate_size * d.mm
    )


def _tail(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    autocast: bool,
    tokens: int,
) -> int:
    """Bytes saved outside the blocks: the final norm / head transform, the trainable
    embeddings' stem, and under autocast the low-precision copy of the output projection."""
    d = _dtypes(spec.precision)
    total = _round(_head_per_token(spec, arch, d, trainable) * tokens)
    if any(p.block is None and p.kind == "embeddings" for p in trainable):
        total += _round(_stem_per_token(arch, d, _dropout_p(spec, arch) > 0) * tokens)
    if autocast and spec.model.head == "causal-lm":
        total += _round(arch.vocab_size * arch.hidden_size * 2)
    return total


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


def _grads_above(
    spec: Spec, arch: Architecture, trainable: list[Param], block: int, pbytes: int, shard: int
) -> int:
    """Gradient bytes that exist when ``block``'s backward runs: blocks above it, the head and
    final norm, and the head's contribution to a tied trainable embedding (held in the
    autograd buffer until the lookup's gradient is added to it)."""
    total = 0
    for p in trainable:
        if p.block is not None:
            total += _round(p.numel * pbytes / shard) if p.block > block else 0
        elif p.kind != "embeddings":
            total += _round(p.numel * pbytes / shard)
    total += _tied_accumulation(spec, arch, trainable, pbytes) // 2
    return total


def _tied_accumulation(spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int) -> int:
    """A tied, trainable embedding gets two gradients (head and lookup) summed at the end of
    backward: two extra vocab x hidden tensors are alive while they are added."""
    tied = spec.model.head == "causal-lm" and (
        arch.family in ("gpt2", "bert") or arch.tie_word_embeddings
    )
    if not tied or not any(p.kind == "embeddings" and p.block is None for p in trainable):
        return 0
    return 2 * _round(arch.vocab_size * arch.hidden_size * pbytes)
