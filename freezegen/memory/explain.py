"""``freezegen estimate --explain``: each term of the analytic peak as a formula with its numbers.

The analytic model (:mod:`freezegen.memory.analytic`) takes the largest of several moments of
the step (forward, loss backward, each block's backward, end of backward, optimizer step). This
module asks the same helpers for the same quantities, finds the moment whose terms equal the
estimate's breakdown, and writes each term out: ``optimizer_states = 2 states x 4 B x
226,734,080 trainable = 1.69 GiB``. The values shown are always the estimate's own; when the
analytic model has changed in a way this module does not follow, a term says so instead of
showing a formula that would not add up (tests/test_cli_estimate.py checks that it follows).

Pure Python, like the analytic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from freezegen.arch import ArchitectureError, architecture_for
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import Param, parameter_table
from freezegen.memory import analytic as _a
from freezegen.memory.estimate import (
    FRAGMENTATION,
    Breakdown,
    EstimateError,
    MemoryEstimate,
    budget_bytes,
    overhead_bytes,
)
from freezegen.spec.models import Spec
from freezegen.spec.presets import GIB, MIB

KIB = 1024

__all__ = ["Explanation", "Term", "explain", "size"]

TERMS = ("parameters", "gradients", "optimizer_states", "activations", "temporaries")


def size(n: float) -> str:
    """Bytes as GiB / MiB / KiB / B, two decimals."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Term:
    """One line of an explanation: ``name = formula = value``."""

    name: str
    value: int
    formula: str


@dataclass
class Explanation:
    """The estimate, the moment of the step that sets its peak, and one :class:`Term` each."""

    estimate: MemoryEstimate
    phase: str | None
    terms: list[Term] = field(default_factory=list)

    @property
    def itemised(self) -> bool:
        """Whether every term could be written out (the analytic model was followed)."""
        return self.phase is not None


def explain(spec: Spec) -> Explanation:
    """Return the analytic estimate of ``spec`` with each term's formula.

    Raises :class:`EstimateError` exactly when the analytic estimate does.
    """
    est = _a.estimate_analytic(spec)
    try:
        phases, ctx = _phases(spec)
    except EstimateError:
        raise
    except Exception:  # the analytic internals changed shape: show values without formulas
        phases, ctx = {}, None
    phase = next((name for name, bd in phases.items() if bd == est.breakdown), None)
    terms = []
    for name in TERMS:
        value = getattr(est.breakdown, name)
        formula = _formula(name, phase, ctx) if phase is not None and ctx is not None else None
        terms.append(Term(name, value, formula or "(not itemised for this spec)"))
    terms.append(Term("overhead", est.overhead_bytes, _overhead(spec, est)))
    if est.budget_bytes:
        terms.append(Term("budget", est.budget_bytes, _budget(spec)))
    return Explanation(est, _phase_title(phase), terms)


# ---------------------------------------------------------------------------------------------
# The moments of the step, mirrored from analytic._model with its own helpers


@dataclass
class _Ctx:
    spec: Spec
    pbytes: int
    low: int
    shard: int
    tokens: int
    params: list[Param]
    trainable: list[Param]
    n_total: int
    n_train: int
    gather: int
    block_numel: int
    blocks: dict[int, tuple[int, int]]
    tail: int
    stem: int
    loss_fwd: int
    loss_bwd: int
    saved_lsm: int
    tied: int
    transient: int
    opt_temp: int
    grads_during: int
    ddp_bucket: int
    vocab: int
    hidden: int
    inter: int
    family: str
    res: int
    mm: int
    above: dict[int, int]


def _phases(spec: Spec) -> tuple[dict[str, Breakdown], _Ctx]:
    if spec.model.factory is not None:
        raise EstimateError("a factory model can only be measured; use --trace")
    try:
        arch = architecture_for(spec.model)
    except ArchitectureError as exc:
        raise EstimateError(str(exc)) from None
    assert arch is not None
    params = parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
    plan = plan_freeze(spec.freeze, params, arch.num_layers)
    trainable = plan.trainable
    pbytes = 2 if spec.precision == "bf16-pure" else 4
    autocast = spec.precision in ("fp16", "bf16")
    world = spec.hardware.world_size if spec.hardware else 1
    shard = world if spec.distributed.strategy == "fsdp" else 1
    tokens = spec.batch.micro_batch_size * spec.batch.seq_len
    rnd = _a._round

    param_bytes = sum(rnd(p.numel * pbytes / shard) for p in params)
    grad_bytes = sum(rnd(p.numel * pbytes / shard) for p in trainable)
    opt_bytes, opt_temp = _a._optimizer_terms(spec, trainable, pbytes, shard)
    block_numel = sum(p.numel for p in params if p.block == 0)
    gather = 2 * rnd(block_numel * pbytes) if shard > 1 else 0
    param_bytes += gather
    blocks = _a._block_activations(
        spec, arch, params, trainable, plan.first_trainable_block, pbytes, autocast, tokens
    )
    acts = sum(saved for saved, _ in blocks.values())
    loss_fwd, loss_bwd = _a._loss_terms(spec, arch, tokens, autocast, pbytes)
    tail = _a._tail(spec, arch, params, trainable, autocast, tokens)
    grads_during = grad_bytes if spec.batch.grad_accum_steps > 1 else 0
    saved_lsm = _a._saved_log_softmax(spec, arch, tokens)
    tied = _a._tied_accumulation(spec, arch, trainable, pbytes)
    d = _a._dtypes(spec.precision)
    stem = tail - rnd(_a._head_per_token(spec, arch, d, trainable) * tokens)
    transient = _a._backward_transient(spec, arch, tokens)
    n_train = sum(p.numel for p in trainable)
    ddp_bucket = rnd(n_train * pbytes) if spec.distributed.strategy == "ddp" else 0

    phases = {
        "forward": Breakdown(param_bytes, grads_during, opt_bytes, acts + tail + loss_fwd, 0),
        "loss-backward": Breakdown(
            param_bytes, grads_during, opt_bytes, acts + tail + saved_lsm, loss_bwd
        ),
        "backward-end": Breakdown(param_bytes, grad_bytes, opt_bytes, 0, tied),
        "optimizer": Breakdown(param_bytes, grad_bytes, opt_bytes, 0, opt_temp),
    }
    above: dict[int, int] = {}
    below = 0
    for block in sorted(blocks):
        saved, recompute = blocks[block]
        above[block] = grads_during or _a._grads_above(spec, arch, trainable, block, pbytes, shard)
        phases[f"backward-block-{block}"] = Breakdown(
            param_bytes, above[block], opt_bytes, stem + below + saved, recompute + transient
        )
        below += saved
    if ddp_bucket:
        phases = {
            k: Breakdown(
                c.parameters,
                c.gradients + ddp_bucket,
                c.optimizer_states,
                c.activations,
                c.temporaries,
            )
            for k, c in phases.items()
        }
    ctx = _Ctx(
        spec, pbytes, 2 if autocast else pbytes, shard, tokens, params, trainable,
        sum(p.numel for p in params), n_train, gather, block_numel, blocks, tail, stem,
        loss_fwd, loss_bwd, saved_lsm, tied, transient, opt_temp, grads_during, ddp_bucket,
        arch.vocab_size, arch.hidden_size, arch.intermediate_size, arch.family, d.res, d.mm,
        above,
    )  # fmt: skip
    return phases, ctx


def _phase_title(phase: str | None) -> str | None:
    if phase is None:
        return None
    if phase.startswith("backward-block-"):
        return f"the backward of block {phase.removeprefix('backward-block-')}"
    return {
        "forward": "the end of the forward (the logits and the loss)",
        "loss-backward": "the backward of the loss (the logits' gradients)",
        "backward-end": "the end of the backward (every gradient exists)",
        "optimizer": "the optimizer step",
    }[phase]


# ---------------------------------------------------------------------------------------------
# Formulas


def _dtype(nbytes: int) -> str:
    return {4: "fp32", 2: "16-bit", 1: "bool"}.get(nbytes, f"{nbytes}-byte")


def _per(c: _Ctx) -> str:
    return f" / {c.shard} FSDP ranks" if c.shard > 1 else ""


def _formula(name: str, phase: str, c: _Ctx) -> str:
    return {
        "parameters": _parameters,
        "gradients": _gradients,
        "optimizer_states": _optimizer,
        "activations": _activations,
        "temporaries": _temporaries,
    }[name](phase, c)


def _parameters(phase: str, c: _Ctx) -> str:
    text = f"{c.n_total:,} params x {c.pbytes} B ({_dtype(c.pbytes)}){_per(c)}"
    if c.gather:
        text += f" + 2 gathered blocks x {c.block_numel:,} x {c.pbytes} B"
    return text


def _gradients(phase: str, c: _Ctx) -> str:
    every = f"{c.n_train:,} trainable x {c.pbytes} B{_per(c)}"
    if phase.startswith("backward-block-") and not c.grads_during:
        block = int(phase.removeprefix("backward-block-"))
        n_above = sum(
            p.numel
            for p in c.trainable
            if (p.block is not None and p.block > block)
            or (p.block is None and p.kind != "embeddings")
        )
        text = f"{n_above:,} trainable above block {block} (their gradients exist) x {c.pbytes} B"
        text += _per(c)
        if c.tied:
            text += f" + the tied head's gradient {c.vocab:,} x {c.hidden:,} x {c.pbytes} B"
    elif phase in ("forward", "loss-backward"):
        text = (
            f"accumulated over {c.spec.batch.grad_accum_steps} micro-steps: {every}"
            if c.grads_during
            else "0 (none exist before the backward)"
        )
    else:
        text = every
    if c.ddp_bucket:
        text += f" + DDP buckets {c.n_train:,} x {c.pbytes} B"
    return text


def _optimizer(phase: str, c: _Ctx) -> str:
    o = c.spec.optimizer
    if o.name == "sgd":
        if o.momentum == 0:
            return "0 (SGD without momentum keeps no state)"
        return f"1 momentum buffer x {c.pbytes} B x {c.n_train:,} trainable{_per(c)}"
    text = f"2 states (exp_avg, exp_avg_sq) x {c.pbytes} B x {c.n_train:,} trainable{_per(c)}"
    if o.implementation == "fused":
        text += f" + {len(c.trainable)} on-device step counters x 512 B"
    return text


def _blocks_text(c: _Ctx, chosen: list[int]) -> str:
    """Group consecutive blocks keeping the same bytes: ``blocks 6-23: 18 x 1.50 GiB``."""
    groups: list[list[int]] = []
    for block in chosen:
        if groups and groups[-1][-1] == block - 1 and _same(c, groups[-1][0], block):
            groups[-1].append(block)
        else:
            groups.append([block])
    parts = []
    for g in groups:
        saved, recompute = c.blocks[g[0]]
        name = f"block {g[0]}" if len(g) == 1 else f"blocks {g[0]}-{g[-1]}"
        if recompute:
            what = f"input {c.tokens:,} tokens x {c.hidden:,} x {c.pbytes} B (checkpointed)"
        else:
            what = f"{c.tokens:,} tokens x {saved / c.tokens:,.0f} B/token"
        parts.append(f"{name}: {len(g)} x {what}" if len(g) > 1 else f"{name}: {what}")
    return " + ".join(parts)


def _same(c: _Ctx, a: int, b: int) -> bool:
    (saved_a, rec_a), (saved_b, rec_b) = c.blocks[a], c.blocks[b]
    return saved_a == saved_b and bool(rec_a) == bool(rec_b)


def _logits(c: _Ctx) -> str:
    return f"{c.tokens:,} tokens x {c.vocab:,} vocab"


def _activations(phase: str, c: _Ctx) -> str:
    order = sorted(c.blocks)
    if phase in ("backward-end", "optimizer"):
        return "0 (everything saved for the backward is freed)"
    if phase.startswith("backward-block-"):
        block = int(phase.removeprefix("backward-block-"))
        kept = [b for b in order if b <= block]
        text = f"still saved, {_blocks_text(c, kept)}"
        if c.stem:
            text += f" + embeddings' saved tensors {size(c.stem)}"
        return text
    text = f"saved by {_blocks_text(c, order)}" if order else "nothing saved by the frozen blocks"
    text += f" + final norm / head input {size(c.tail)}"
    if phase == "forward" and c.loss_fwd:
        parts = [f"{c.low} B logits"]
        if c.low != 4:
            parts.append("4 B fp32 copy")
        parts.append("4 B log-softmax")
        text += f" + loss {_logits(c)} x ({' + '.join(parts)})"
    elif phase == "loss-backward" and c.saved_lsm:
        text += f" + saved log-softmax {_logits(c)} x 4 B"
    return text


def _temporaries(phase: str, c: _Ctx) -> str:
    if phase == "forward":
        return "0"
    if phase == "loss-backward":
        return f"log-softmax and logits gradients 2 x {_logits(c)} x 4 B"
    if phase == "backward-end":
        if not c.tied:
            return "0"
        return (
            f"tied embedding's two gradients summed: 2 x {c.vocab:,} x {c.hidden:,} x {c.pbytes} B"
        )
    if phase == "optimizer":
        o = c.spec.optimizer
        if not c.opt_temp:
            return f"0 ({o.implementation} {o.name} needs no temporaries)"
        if o.implementation == "loop":
            return f"{size(c.opt_temp)}: copies of the largest trainable tensor ({o.name}, loop)"
        return (
            f"one trainable-sized tensor list ({o.implementation} {o.name}): "
            f"{c.n_train:,} x {c.pbytes} B{_per(c)}"
        )
    block = int(phase.removeprefix("backward-block-"))
    f_grads = 1 if c.family == "bert" else 2
    text = (
        f"residual gradient {c.tokens:,} tokens x {c.hidden:,} x {c.res} B + {f_grads} MLP "
        f"gradient{'s' if f_grads > 1 else ''} {c.tokens:,} x {c.inter:,} x {c.mm} B"
    )
    recompute = c.blocks[block][1]
    if recompute:
        text = f"block {block} recomputed {size(recompute)} + {text}"
    return text


def _overhead(spec: Spec, est: MemoryEstimate) -> str:
    fixed = overhead_bytes(spec, 0)
    frag = est.overhead_bytes - fixed
    return (
        f"CUDA context + cuBLAS workspace {size(fixed)} + {FRAGMENTATION:.0%} fragmentation of "
        f"the peak {size(frag)}"
    )


def _budget(spec: Spec) -> str:
    hw = spec.hardware
    assert hw is not None
    total = budget_bytes(spec) + int(hw.reserve_gib * GIB)
    text = f"{hw.gpu}'s {size(total)}" if hw.gpu else f"hardware.memory_gib {hw.memory_gib:g}"
    if hw.reserve_gib:
        text += f" - reserve_gib {hw.reserve_gib:g}"
    return text
