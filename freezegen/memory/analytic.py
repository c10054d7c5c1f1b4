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
  save the normalised x; a fully frozen block runs dropout in eval()); sdpa (q, k, v at their
  grouped size, output, log-sum-exp; no mask: one unpadded sequence per row runs is_causal) vs
  eager and fp32 GQA's math kernel (the probabilities); dropout (bool masks). Under autocast
  each block also keeps a low-precision copy of each matmul weight (the autocast cache for
  trainable ones, the per-use cast a frozen one's matmul saves);
* blocks below the first block that receives a gradient keep nothing (autograd records nothing
  before the first tensor that requires grad); a checkpointed block keeps only its input and
  rebuilds its activations at the start of its own backward;
* the language-model loss path (logits, fp32 log-softmax and its gradients: ``b*s*vocab``);
* each block's backward: gradients of everything above it, what the blocks below saved, its own
  (recomputed) activations and the gradients alive in its MLP backward — the peak with
  checkpointing or without a large vocabulary;
* optimizer temporaries: foreach Adam one trainable-sized tensor list (Adam's L2 decay too),
  loop Adam two copies of the largest parameter, fused none;
* DDP adds the reducer's gradient buckets. FSDP (``fully_shard`` per block plus the root, as
  rank 0 of a fake process group runs it in the traced estimator) keeps one padded shard of each
  parameter and optimizer state and one flat sharded gradient per unit (``_Fsdp``); the root
  unit (embeddings, final norm, head) is gathered through forward and loss and again from the
  head's backward on, with the head's unsharded gradients alive until the end of backward;
  block ``i``'s backward holds its gathered parameters and its unsharded gradients, the
  previous block's reduce-scatter input and the next block's prefetched all-gather buffer.

:func:`analyse` builds every moment of the step once (:class:`Moment`), each term as the
:class:`Part` records it sums (label, factors, bytes); :func:`estimate_analytic` takes the largest,
and ``freezegen estimate --explain`` (:mod:`freezegen.memory.explain`) writes its parts out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from freezegen.arch import ArchitectureError, architecture_for
from freezegen.arch.freeze import FreezePlan, plan_freeze
from freezegen.arch.params import ATTENTION, EMBEDDINGS, HEAD, MLP, Param, parameter_table
from freezegen.memory.estimate import Breakdown, EstimateError, MemoryEstimate, finish
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture
from freezegen.spec.selectors import parse_ranges

__all__ = ["TERMS", "Moment", "Part", "Step", "analyse", "estimate_analytic", "estimate_of"]

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
        self._seen: dict[str, bool] = {}  # the same few modules are asked about many times

    def __call__(self, module: str) -> bool:
        if self.names is None:
            return True
        found = self._seen.get(module)
        if found is None:
            found = self._seen[module] = any(
                n.endswith(f".{module}.weight") and not n.endswith(f".attention.{module}.weight")
                for n in self.names
            )
        return found

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
    # Attention core. With one unpadded sequence per row transformers gives sdpa no mask
    # (is_causal) and grouped-query K/V at their own size. Flash (fp16/bf16) and memory-
    # efficient (fp32, no GQA) kernels save q, k, v and the output (also the o_proj input) in
    # the matmul dtype and a fp32 log-sum-exp per head, and drop inside (a seed only). fp32 GQA
    # has neither kernel (flash needs fp16/bf16, memory-efficient equal head counts) and runs
    # the math one, which keeps what eager keeps: q, K/V repeated to all heads (scaled, or
    # contiguous copies), the output only as the o_proj input, and the probabilities.
    out_proj = {"gpt2": "attn.c_proj", "bert": "attention.output.dense", "llama": "o_proj"}[
        arch.family
    ]
    kv = arch.kv_heads * arch.head_dim
    probs = eager or (kv != h and d.mm == 4)  # eager, or fp32 GQA's math kernel
    attn = (h + 2 * (h if probs else kv)) * d.mm + (
        h * d.mm if not probs or trains(out_proj) else 0
    )
    if probs:
        softmax = 4 if (arch.family == "llama" or d.autocast) else d.mm
        attn += n * s * _eager_probs(d, softmax, drop)
    else:
        attn += 4 * n
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


# ---------------------------------------------------------------------------------------------
# The moments of the step, each term as the parts it sums

TERMS = ("parameters", "gradients", "optimizer_states", "activations", "temporaries")


@dataclass(frozen=True)
class Part:
    """One summand of one term at one moment of the step.

    ``value``: its bytes, each tensor rounded up to the allocator's 512-byte blocks (negative:
    freed at this moment); ``factors``: the (number, unit) pairs whose product it is before that
    rounding, e.g. ``((226_734_080, "trainable"), (4, "B"))``; ``label``: what it is; ``note``: a
    remark (a dtype, why the term is 0). ``freezegen estimate --explain`` writes these out.
    """

    label: str
    value: int
    factors: tuple[tuple[float, str], ...] = ()
    note: str = ""


def _zero(why: str) -> tuple[Part, ...]:
    return (Part("", 0, note=why),)


@dataclass(frozen=True)
class Moment:
    """One moment of the step: each term (:data:`TERMS`) as the parts it sums."""

    name: str
    parameters: tuple[Part, ...] = ()
    gradients: tuple[Part, ...] = ()
    optimizer_states: tuple[Part, ...] = ()
    activations: tuple[Part, ...] = ()
    temporaries: tuple[Part, ...] = ()

    def parts(self, term: str) -> tuple[Part, ...]:
        return getattr(self, term)

    @property
    def breakdown(self) -> Breakdown:
        return Breakdown(*(sum(p.value for p in self.parts(t)) for t in TERMS))


Parts = list[Part] | tuple[Part, ...]


def _moment(name: str, *terms: Parts) -> Moment:
    return Moment(name, *(tuple(t) for t in terms))


@dataclass(frozen=True)
class Step:
    """Every moment of the steady-state step the model considers, in order."""

    moments: tuple[Moment, ...]
    trainable_parameters: int
    total_parameters: int

    @property
    def peak(self) -> Moment:
        """The largest moment (the first of equal ones): its breakdown is the estimate's."""
        return max(self.moments, key=lambda m: m.breakdown.total)


def estimate_analytic(
    spec: Spec, *, arch: Architecture | None = None, plan: FreezePlan | None = None
) -> MemoryEstimate:
    """Return the modelled per-device peak of the spec's steady-state optimizer step.

    ``arch`` and ``plan`` may be passed when the caller has resolved them already (lint has).
    Raises :class:`EstimateError` for a ``factory`` model (only tracing knows it) or a config
    that cannot be read.
    """
    return estimate_of(spec, analyse(spec, arch=arch, plan=plan))


def estimate_of(spec: Spec, step: Step) -> MemoryEstimate:
    """The estimate of ``step`` (:func:`analyse`'s result for ``spec``): its peak moment."""
    return finish(
        "analytic", spec, step.peak.breakdown, step.trainable_parameters, step.total_parameters
    )


def analyse(
    spec: Spec, *, arch: Architecture | None = None, plan: FreezePlan | None = None
) -> Step:
    """Return every moment of the spec's step, each term as its parts (see :class:`Part`).

    ``arch`` and ``plan``, when given, must be the spec's own (architecture_for, plan_freeze).
    Raises :class:`EstimateError` exactly when :func:`estimate_analytic` does.
    """
    if spec.model.factory is not None:
        raise EstimateError(
            "a factory model can only be measured, not modelled; use the traced estimate (--trace)"
        )
    if arch is None:
        try:
            arch = architecture_for(spec.model)
        except ArchitectureError as exc:
            raise EstimateError(str(exc)) from None
    assert arch is not None
    if plan is None:
        params = parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
        plan = plan_freeze(spec.freeze, params, arch.num_layers)
    params = plan.params
    trainable = plan.trainable
    if not trainable:
        raise EstimateError("the freeze section leaves no parameter to train")
    return _step(spec, arch, params, trainable, plan.first_trainable_block)


def _step(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    first_trainable_block: int | None,
) -> Step:
    pbytes = 2 if spec.precision == "bf16-pure" else 4
    dtype = "bf16" if pbytes == 2 else "fp32"
    autocast = spec.precision in ("fp16", "bf16")
    world = spec.hardware.world_size if spec.hardware else 1
    shard = world if spec.distributed.strategy == "fsdp" else 1
    b, s = spec.batch.micro_batch_size, spec.batch.seq_len
    tokens = b * s
    h = arch.hidden_size
    n_total = sum(p.numel for p in params)
    n_train = sum(p.numel for p in trainable)
    accum = spec.batch.grad_accum_steps

    fsdp = _fsdp_terms(params, trainable, pbytes, shard) if shard > 1 else None
    if fsdp is not None:
        param_parts = [
            Part(
                "rank 0's shards",
                sum(_round(_shard_numel(p, shard) * pbytes) for p in params),
                ((sum(_shard_numel(p, shard) for p in params), "params"), (pbytes, "B")),
                f"{dtype}; {n_total:,} split over {shard} ranks, dim 0 padded",
            )
        ]
        grads_all = fsdp.all_grads
    else:
        param_parts = [
            Part("", sum(_round(p.numel * pbytes) for p in params), _each(n_total, pbytes), dtype)
        ]
        grads_all = Part(
            "",
            sum(_round(p.numel * pbytes) for p in trainable),
            _each(n_train, pbytes, "trainable"),
        )
    states, opt_temp = _optimizer_parts(spec, trainable, pbytes, shard)
    if accum > 1:
        grads_during = [replace(grads_all, note=f"accumulated over {accum} micro-steps")]
    else:
        grads_during = list(_zero("none exist before the backward"))

    blocks = _block_activations(
        spec, arch, params, trainable, first_trainable_block, pbytes, autocast, tokens
    )
    order = sorted(blocks)
    saved_all = _saved_parts(blocks, order, tokens, h, pbytes)
    head, stem = _tail(spec, arch, trainable, autocast, tokens)
    loss_fwd, saved_log_softmax, loss_bwd = _loss_parts(spec, arch, tokens, autocast, pbytes)
    tied = _tied_accumulation(spec, arch, trainable, pbytes)
    tied_sum = []
    if tied:
        tied_sum = [
            Part(
                "the tied embedding's two gradients, summed",
                tied,
                ((2, "gradients"), *_matrix(arch, pbytes)),
            )
        ]
    freed = _zero("everything saved for the backward is freed")

    def common(name: str, grads: Parts, acts: Parts, temps: Parts) -> Moment:
        return _moment(name, param_parts, grads, states, acts, temps)

    moments = {
        "forward": common("forward", grads_during, [*saved_all, head, *stem, *loss_fwd], ()),
        "loss-backward": common(
            "loss-backward", grads_during, [*saved_all, head, *stem, *saved_log_softmax], loss_bwd
        ),
        "backward-end": common("backward-end", [grads_all], freed, tied_sum),
        "optimizer": common("optimizer", [grads_all], freed, opt_temp),
    }
    # The final norm's backward, before any block's: everything saved is still alive. Python
    # RMSNorm's backward builds five fp32 hidden-sized tensors (the output's gradient, the
    # normalised x's, the mean's expanded and divided gradient, pow's 2*x and its product);
    # fused LayerNorm backward two (gradient in and out).
    # The output projection's backward has run: its saved input is gone.
    head_input = []
    if arch.family != "bert" and _head_trains(spec, arch, trainable):
        d = _dtypes(spec.precision)
        head_input = [
            Part(
                "the head's input, freed by its backward",
                -_round(_linear_inputs(d, h, 1) * tokens),
                ((tokens, "tokens"), (h, "hidden"), (2 if d.autocast else d.mm, "B")),
            )
        ]
    suffix = _grad_suffix(arch, trainable, pbytes, shard)
    tied_grad = _tied_head_grad(spec, arch, trainable, pbytes)
    moments["head-backward"] = common(
        "head-backward",
        grads_during
        if accum > 1
        else _grads_above(arch, arch.num_layers, pbytes, suffix, tied_grad),
        [*saved_all, head, *stem, *head_input],
        [_norm_backward("the final norm's backward", arch, tokens)],
    )
    # Each block's backward: the gradients of everything above it exist, the blocks below
    # still hold what they saved, a checkpointed block has rebuilt its activations.
    transient = _backward_transient(spec, arch, tokens)
    for block in order:
        blk = blocks[block]
        above = grads_during if accum > 1 else _grads_above(arch, block, pbytes, suffix, tied_grad)
        recompute = (
            [] if blk.input is None else _full_parts(blk, f"block {block}", "recomputed", 1, tokens)
        )
        kept = _saved_parts(blocks, [i for i in order if i <= block], tokens, h, pbytes)
        moments[f"backward-block-{block}"] = common(
            f"backward-block-{block}", above, stem + kept, recompute + transient
        )
    if fsdp is not None:
        moments = _fsdp_moments(moments, fsdp, spec, arch, trainable, blocks, stem, pbytes, tokens)
    if spec.distributed.strategy == "ddp":
        # The reducer's gradient buckets (gradient_as_bucket_view=False) live all step.
        bucket = Part(
            "DDP reducer buckets", _round(n_train * pbytes), _each(n_train, pbytes, "trainable")
        )
        moments = {
            k: Moment(
                m.name,
                m.parameters,
                (*m.gradients, bucket),
                m.optimizer_states,
                m.activations,
                m.temporaries,
            )
            for k, m in moments.items()
        }
    return Step(tuple(moments.values()), n_train, n_total)


def _each(n: int, nbytes: int, unit: str = "params") -> tuple[tuple[float, str], ...]:
    return ((n, unit), (nbytes, "B"))


def _matrix(arch: Architecture, nbytes: int) -> tuple[tuple[float, str], ...]:
    return ((arch.vocab_size, "vocab"), (arch.hidden_size, "hidden"), (nbytes, "B"))


def _norm_backward(label: str, arch: Architecture, tokens: int) -> Part:
    count = 5 if arch.family == "llama" else 2
    return Part(
        label,
        count * _round(tokens * arch.hidden_size * 4),
        ((count, "fp32 tensors"), (tokens, "tokens"), (arch.hidden_size, "hidden"), (4, "B")),
    )


def _optimizer_parts(
    spec: Spec, trainable: list[Param], pbytes: int, shard: int
) -> tuple[tuple[Part, ...], tuple[Part, ...]]:
    """Return (the optimizer states' parts, the optimizer step's temporaries' parts)."""
    o = spec.optimizer
    numels = [_shard_numel(p, shard) for p in trainable]
    sizes = [_round(n * pbytes) for n in numels]
    total = sum(sizes)
    n = sum(numels)
    where = "rank 0's shards" if shard > 1 else ""
    largest = ((max(numels), "elements (the largest trainable tensor)"), (pbytes, "B"))
    one_list = Part(
        f"one trainable-sized tensor list ({o.implementation} {o.name})",
        total,
        _each(n, pbytes, "trainable"),
        where,
    )
    no_temps = _zero(f"{o.implementation} {o.name} needs no temporaries")
    if o.name == "sgd":
        states = (
            (Part("", total, ((1, "momentum buffer"), (pbytes, "B"), (n, "trainable")), where),)
            if o.momentum > 0
            else _zero("SGD without momentum keeps no state")
        )
        temps = no_temps
        if o.weight_decay > 0 and o.implementation == "foreach":
            temps = (one_list,)
        if o.implementation == "loop" and o.weight_decay > 0:
            temps = (Part("a copy for the weight decay", max(sizes), largest),)
        return states, temps
    states = (
        Part(
            "",
            2 * total,
            ((2, "states (exp_avg, exp_avg_sq)"), (pbytes, "B"), (n, "trainable")),
            where,
        ),
    )
    if o.implementation == "fused":
        counters = len(trainable)
        step = Part(
            "on-device step counters", BLOCK * counters, ((counters, "counters"), (BLOCK, "B"))
        )
        return (*states, step), no_temps
    if o.implementation == "loop":
        return states, (Part("copies (loop)", 2 * max(sizes), ((2, "copies"), *largest)),)
    # foreach: torch._foreach_sqrt(exp_avg_sq) (one trainable-sized list). Adam's L2 decay
    # builds grad + wd * param first, but deletes it before the sqrt: still one list at a time.
    return states, (one_list,)


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


@dataclass(frozen=True)
class _Block:
    """What one block saves: ``act`` (tokens x ``per_token``, rounded), autocast's low-precision
    copies of its matmul weights (``weights`` bytes of ``weights_numel``), less what the first
    trainable block's input norm does not record (``skipped``, ``skipped_per_token``); a
    checkpointed block keeps only its ``input`` instead and rebuilds the rest in its backward."""

    per_token: float
    act: int
    weights: int
    weights_numel: int
    skipped_per_token: float
    skipped: int
    input: int | None

    @property
    def full(self) -> int:
        return self.act + self.weights - self.skipped

    @property
    def saved(self) -> int:
        """Bytes kept from its forward to its backward."""
        return self.full if self.input is None else self.input

    @property
    def recompute(self) -> int:
        """Bytes its recomputation rebuilds at the start of its backward (0 unless checkpointed)."""
        return 0 if self.input is None else self.full


def _block_activations(
    spec: Spec,
    arch: Architecture,
    params: list[Param],
    trainable: list[Param],
    first_trainable_block: int | None,
    pbytes: int,
    autocast: bool,
    tokens: int,
) -> dict[int, _Block]:
    """Return what each block that saves anything keeps (see :class:`_Block`)."""
    embeddings_train = any(p.block is None and p.kind == "embeddings" for p in trainable)
    if embeddings_train:
        first = 0
    elif first_trainable_block is None:
        return {}
    else:
        first = first_trainable_block
    d = _dtypes(spec.precision)
    h = arch.hidden_size
    weights = weights_numel = 0
    if autocast:
        matmuls = [
            p
            for p in params
            if p.block == first and p.kind in (ATTENTION, MLP) and len(p.shape) == 2
        ]
        weights = sum(_round(p.numel * 2) for p in matmuls)
        weights_numel = sum(p.numel for p in matmuls)
    # The first trainable block's input does not require grad: a llama RMSNorm's pow and rsqrt
    # multiply record nothing (its input / fp32 copy and rsqrt are not kept).
    skipped = 0.0
    if not embeddings_train and arch.family == "llama":
        skipped = (4 * h if d.pure else d.res * h) + 4
    checkpointed = _checkpointed(spec, arch.num_layers)
    # A checkpointed block keeps only its input (the residual stream's dtype).
    block_input = _round(tokens * h * pbytes)
    out = {}
    for block in range(first, arch.num_layers):
        per_token = _block_per_token(spec, arch, d, _Trains(block, trainable))
        skip = skipped if block == first else 0
        out[block] = _Block(
            per_token,
            _round(per_token * tokens),
            weights,
            weights_numel,
            skip,
            _round(skip * tokens),
            block_input if block in checkpointed else None,
        )
    return out


def _full_parts(blk: _Block, name: str, verb: str, count: int, tokens: int) -> list[Part]:
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
    if blk.skipped:
        parts.append(
            Part(
                f"what {name}'s input norm does not record (its input needs no grad)",
                -count * blk.skipped,
                (*times, (tokens, "tokens"), (blk.skipped_per_token, "B/token")),
            )
        )
    return parts


def _saved_parts(
    blocks: dict[int, _Block], chosen: list[int], tokens: int, hidden: int, pbytes: int
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
            parts += _full_parts(blk, name, "saved", n, tokens)
        else:
            times = ((n, "blocks"),) if n > 1 else ()
            parts.append(
                Part(
                    f"{name} (checkpointed) input",
                    n * blk.input,
                    (*times, (tokens, "tokens"), (hidden, "hidden"), (pbytes, "B")),
                )
            )
    return parts


def _kept(blk: _Block) -> object:
    """What decides whether two neighbouring blocks are shown together."""
    return blk if blk.input is None else blk.input


def _backward_transient(spec: Spec, arch: Architecture, tokens: int) -> list[Part]:
    """Gradients alive inside one block's backward on top of what it saved: the residual
    stream's gradient and, at the MLP's elementwise backward (where the block's saved tensors
    are still all alive), the gradients of its two inputs (gated / tanh-GELU: act and up,
    0.5*x and 1+tanh) or one (exact GELU)."""
    d = _dtypes(spec.precision)
    f_grads = 1 if arch.family == "bert" else 2
    h, f = arch.hidden_size, arch.intermediate_size
    times = ((f_grads, "tensors"),) if f_grads > 1 else ()
    return [
        Part(
            "residual gradient",
            _round(tokens * h * d.res),
            ((tokens, "tokens"), (h, "hidden"), (d.res, "B")),
        ),
        Part(
            "MLP gradients" if f_grads > 1 else "MLP gradient",
            f_grads * _round(tokens * f * d.mm),
            (*times, (tokens, "tokens"), (f, "intermediate"), (d.mm, "B")),
        ),
    ]


def _tail(
    spec: Spec, arch: Architecture, trainable: list[Param], autocast: bool, tokens: int
) -> tuple[Part, list[Part]]:
    """What is saved outside the blocks: (the final norm / head transform, the rest: the
    trainable embeddings' stem and, under autocast, the low-precision copy of the output
    projection)."""
    d = _dtypes(spec.precision)
    per_token = _head_per_token(spec, arch, d, trainable)
    head = Part(
        "final norm / head saved",
        _round(per_token * tokens),
        ((tokens, "tokens"), (per_token, "B/token")),
    )
    stem = []
    if any(p.block is None and p.kind == "embeddings" for p in trainable):
        per_token = _stem_per_token(arch, d, _dropout_p(spec, arch) > 0)
        stem.append(
            Part(
                "embeddings saved",
                _round(per_token * tokens),
                ((tokens, "tokens"), (per_token, "B/token")),
            )
        )
    if autocast and spec.model.head == "causal-lm":
        stem.append(
            Part(
                "16-bit copy of the output projection (autocast)",
                _round(arch.vocab_size * arch.hidden_size * 2),
                _matrix(arch, 2),
            )
        )
    return head, stem


def _loss_parts(
    spec: Spec, arch: Architecture, tokens: int, autocast: bool, pbytes: int
) -> tuple[list[Part], list[Part], list[Part]]:
    """Return the parts of the output head and loss: (its forward peak, the log-softmax it
    saves for the backward, its backward peak)."""
    if spec.model.head == "sequence-classification":
        return [], [], []
    logits = tokens * arch.vocab_size
    low = 2 if autocast else pbytes

    def each(nbytes: int) -> tuple[tuple[float, str], ...]:
        return ((tokens, "tokens"), (arch.vocab_size, "vocab"), (nbytes, "B"))

    # logits in the compute dtype, an fp32 copy (unless already fp32), fp32 log-softmax.
    fwd = [Part("logits", _round(logits * low), each(low))]
    if low != 4:
        fwd.append(Part("their fp32 copy", _round(logits * 4), each(4)))
    fwd.append(Part("fp32 log-softmax", _round(logits * 4), each(4)))
    saved = [Part("saved log-softmax", _round(logits * 4), each(4))]
    # backward: the gradient of the log-softmax and the logits' fp32 gradient (the saved
    # log-softmax output itself is counted with the activations).
    bwd = [
        Part("log-softmax and logits gradients", 2 * _round(logits * 4), ((2, "tensors"), *each(4)))
    ]
    return fwd, saved, bwd


def _grad_suffix(
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
                outside_bytes += _round(p.numel * pbytes / shard)
                outside_numel += p.numel
        else:
            acc = sums.setdefault(p.block, [0, 0])
            acc[0] += _round(p.numel * pbytes / shard)
            acc[1] += p.numel
    running = [outside_bytes, outside_numel]
    for block in range(arch.num_layers, -1, -1):
        per_block[block] = (running[0], running[1])
        acc = sums.get(block)
        if acc is not None:
            running = [running[0] + acc[0], running[1] + acc[1]]
    return per_block


def _grads_above(
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
            _each(numel, pbytes, "params"),
        )
    ]
    return parts + tied_grad


def _tied_head_grad(
    spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int
) -> list[Part]:
    tied = _tied_accumulation(spec, arch, trainable, pbytes) // 2
    return [Part("the tied head's gradient", tied, _matrix(arch, pbytes))] if tied else []


def _tied_accumulation(spec: Spec, arch: Architecture, trainable: list[Param], pbytes: int) -> int:
    """A tied, trainable embedding gets two gradients (head and lookup) summed at the end of
    backward: two extra vocab x hidden tensors are alive while they are added."""
    tied = spec.model.head == "causal-lm" and (
        arch.family in ("gpt2", "bert") or arch.tie_word_embeddings
    )
    if not tied or not any(p.kind == "embeddings" and p.block is None for p in trainable):
        return 0
    return 2 * _round(arch.vocab_size * arch.hidden_size * pbytes)


# ---------------------------------------------------------------------------------------------
# FSDP


def _shard_numel(p: Param, world: int) -> int:
    """Elements of rank 0's shard: FSDP pads dim 0 to a multiple of the world size."""
    if world == 1 or not p.shape:
        return p.numel
    return -(-p.shape[0] // world) * (p.numel // p.shape[0])


@dataclass(frozen=True)
class _Fsdp:
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
        return _sum("flat sharded gradients, one per unit", self.grads.values())


def _sum(label: str, parts, note: str = "") -> Part:
    """Parts of ``numel x bytes`` with the same element size, as one."""
    parts = list(parts)
    nbytes = parts[0].factors[1][0] if parts else 0
    return Part(
        label,
        sum(p.value for p in parts),
        ((sum(p.factors[0][0] for p in parts), "trainable"), (nbytes, "B")),
        note,
    )


def _named(part: Part, label: str) -> Part:
    return replace(part, label=label)


def _fsdp_terms(params: list[Param], trainable: list[Param], pbytes: int, world: int) -> _Fsdp:
    units = {p.block for p in params}
    names = {p.name for p in trainable}

    def total(unit: int | None, per: bool, only_trainable: bool, numel) -> Part:
        chosen = [p for p in params if p.block == unit and (not only_trainable or p.name in names)]
        n = sum(numel(p) for p in chosen)
        value = sum(_round(numel(p) * pbytes) for p in chosen) if per else _round(n * pbytes)
        return Part("", value, _each(n, pbytes, "trainable" if only_trainable else "params"))

    def padded(p: Param) -> int:
        return _shard_numel(p, world) * world

    def shard(p: Param) -> int:
        return _shard_numel(p, world)

    return _Fsdp(
        grads={u: total(u, False, True, shard) for u in units},
        gathered={u: total(u, True, False, padded) for u in units},
        flat={u: total(u, False, False, padded) for u in units},
        grads_full={u: total(u, True, True, lambda p: p.numel) for u in units},
        rs_input={u: total(u, False, True, padded) for u in units},
    )


def _fsdp_moments(
    moments: dict[str, Moment],
    fsdp: _Fsdp,
    spec: Spec,
    arch: Architecture,
    trainable: list[Param],
    blocks: dict[int, _Block],
    stem: list[Part],
    pbytes: int,
    tokens: int,
) -> dict[str, Moment]:
    """Add FSDP's gathered parameters and unsharded gradients to each moment of the step."""
    accum = spec.batch.grad_accum_steps > 1
    all_shards = fsdp.all_grads
    top = arch.num_layers - 1
    # The root's unsharded gradients (head, final norm; a tied embedding's head part) stay
    # unsharded until the root's reduce-scatter at the end of backward.
    root = [p for p in trainable if p.block is None and p.kind != EMBEDDINGS]
    root_grads = [
        Part(
            "the root's unsharded gradients (final norm, head)",
            sum(_round(p.numel * pbytes) for p in root),
            _each(sum(p.numel for p in root), pbytes, "trainable"),
        ),
        *_tied_head_grad(spec, arch, trainable, pbytes),
    ]

    autocast_cache = None
    if spec.precision in ("fp16", "bf16"):
        cached = [
            p
            for p in trainable
            if p.block in blocks
            and blocks[p.block].recompute > 0
            and p.kind in (ATTENTION, MLP)
            and len(p.shape) == 2
        ]
        if cached:
            autocast_cache = Part(
                "autocast cache: 16-bit copies of the checkpointed blocks' gathered weights",
                sum(_round(p.numel * 2) for p in cached),
                ((sum(p.numel for p in cached), "weights"), (2, "B")),
            )

    def shards_above(block: int) -> Part:
        if accum:
            return all_shards
        return _sum(
            f"sharded gradients of the blocks above {block}",
            (v for u, v in fsdp.grads.items() if u is not None and u > block),
        )

    order = sorted(blocks)
    h = arch.hidden_size
    out = {}
    for name, c in moments.items():
        gathered = [_named(fsdp.gathered[None], "the root gathered (embeddings, norm, head)")]
        grads = list(c.gradients)
        acts = c.activations
        if name in ("forward", "loss-backward"):
            # The loss runs inside the root's forward, while the last block's flat all-gather
            # result is still kept (freed by the next copy-out); the root's pre-backward
            # prefetches that block again before the loss's backward.
            gathered.append(_named(fsdp.flat[top], f"block {top}'s all-gather buffer"))
        if name == "forward" and autocast_cache is not None and autocast_cache.value:
            # Until autocast exits, its cache keeps a low-precision copy of every gathered
            # trainable matmul weight, checkpointed blocks' too (their saved activations do not
            # count it): sharding does not shrink this.
            acts = (*acts, autocast_cache)
        elif name == "head-backward":
            if top in fsdp.flat:
                gathered.append(_named(fsdp.flat[top], f"block {top} prefetched"))
            grads = ([all_shards] if accum else []) + root_grads
        elif name.startswith("backward-block-"):
            # Two moments of block i's backward: the MLP's elementwise backward (what it saved
            # still alive, its own gradients not yet) and its end (its input norm's backward:
            # every gradient of the block unsharded, what it saved gone).
            i = int(name.removeprefix("backward-block-"))
            # The block below is prefetched even when it runs no backward (frozen bottom).
            gathered.append(_named(fsdp.gathered[i], f"block {i} gathered"))
            if i > 0:
                gathered.append(_named(fsdp.flat[i - 1], f"block {i - 1} prefetched"))
            grads = [shards_above(i), *root_grads]
            if i < top:
                grads.append(_named(fsdp.rs_input[i + 1], f"block {i + 1}'s reduce-scatter input"))
            out[f"{name}-end"] = _moment(
                f"{name}-end",
                c.parameters + tuple(gathered),
                [*grads, _named(fsdp.grads_full[i], f"block {i}'s unsharded gradients")],
                c.optimizer_states,
                stem + _saved_parts(blocks, [b for b in order if b < i], tokens, h, pbytes),
                [_norm_backward(f"block {i}'s input norm backward", arch, tokens)],
            )
        elif name == "backward-end":
            grads = [all_shards, *root_grads]
            if 0 in fsdp.rs_input:
                grads.append(_named(fsdp.rs_input[0], "block 0's reduce-scatter input"))
        elif name == "optimizer":
            gathered = []
        out[name] = _moment(
            name, c.parameters + tuple(gathered), grads, c.optimizer_states, acts, c.temporaries
        )
    return out
