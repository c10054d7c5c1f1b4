"""What the operators of a family's block (:class:`~freezegen.arch.family.BlockOperators`), its
head and its embeddings save for the backward, per token.

Counted from the operators of the blocks (the traced estimator checks them to the byte at
reduced size). What changes them: the precision (under autocast every linear saves its own
low-precision cast of its input, the residual stream stays fp32, and CUDA runs layer_norm /
softmax / pow in fp32); which weights of a block train (a linear whose weight is frozen does not
save its input; an RMSNorm whose weight is frozen does not save the normalised x; a fully
frozen block runs dropout in eval()); sdpa (q, k, v at their grouped size, output,
log-sum-exp; no mask: one unpadded sequence per row runs is_causal) vs eager and fp32 GQA's math
kernel (the probabilities); dropout (bool masks).
"""

from __future__ import annotations

from freezegen.arch.families import family_of
from freezegen.arch.family import Activation, BlockOperators, Norm
from freezegen.arch.params import EMBEDDINGS, HEAD, Param
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def dropout_p(spec: Spec, arch: Architecture) -> float:
    """The dropout probability the run uses: the spec's override, else the config's."""
    return arch.dropout if spec.model.dropout is None else spec.model.dropout


def linear_inputs(precision: Precision, h: int, consumers: int) -> float:
    """A (norm) output read by ``consumers`` linears: one shared tensor, or one cast each."""
    return (consumers * 2 if precision.autocast else precision.matmul_bytes) * h


def _eager_probs(precision: Precision, softmax_bytes: int, dropout: bool) -> float:
    """Per head and key position: the softmax output (saved by softmax backward), then either
    the dropout output and its bool mask, or the value-dtype copy that the matmul saves."""
    mm = precision.matmul_bytes
    if dropout:
        return softmax_bytes + mm + 1
    return softmax_bytes + (mm if mm != softmax_bytes else 0)


class Trains:
    """Which weights of one block train. A linear saves its input only when its weight trains
    (the input's gradient needs only the weight); a fully frozen block runs its dropout in
    eval() (the generated script does), so it draws no masks. Modules are named by their path
    inside the block (:class:`~freezegen.arch.family.BlockOperators`); a bare parameter (the
    experts' fused weights) by its own path."""

    def __init__(self, block: int | None, trainable: list[Param] | None) -> None:
        self.names = None if trainable is None else {p.name for p in trainable if p.block == block}
        self.any = self.names is None or bool(self.names)
        self._block = block
        self._seen: dict[str, bool] = {}  # the same few modules are asked about many times

    def __call__(self, module: str) -> bool:
        if self.names is None:
            return True
        found = self._seen.get(module)
        if found is None:
            # A module's weight, or a parameter named as the module (fused expert weights).
            path = f".{self._block}.{module}"
            found = self._seen[module] = any(
                n.endswith(f"{path}.weight") or n.endswith(path) for n in self.names
            )
        return found

    def count(self, *modules: str) -> int:
        return sum(self(m) for m in modules)


ALL_TRAIN = Trains(None, None)


def _inputs(precision: Precision, h: int, trains: Trains, *modules: str) -> float:
    """A tensor read by the linears ``modules``: kept once if any of them trains, or one cast
    per training linear under autocast."""
    consumers = trains.count(*modules)
    if precision.autocast:
        return consumers * 2 * h
    return precision.matmul_bytes * h if consumers else 0


def _norm_saved(precision: Precision, h: int, kind: Norm, weight_trains: bool) -> float:
    """What one norm saves per token, its input included (its output is counted with the
    linears reading it): a fused LayerNorm its input (residual dtype) and mean/rstd (2 x 4
    bytes); RMSNorm see :func:`rms_norm`."""
    if kind is Norm.RMS_NORM:
        return rms_norm(precision, h, weight_trains)
    return h * precision.residual_bytes + 8


def _activation_saved(precision: Precision, f: int, activation: Activation) -> float:
    """What the MLP's nonlinearity saves per token, the down projection's input aside."""
    mm = precision.matmul_bytes
    if activation is Activation.TANH_GELU:
        # 0.5*x*(1+tanh(c*(x+0.044715*x^3))): pow saves x, the final mul saves 0.5*x and 1+tanh,
        # tanh saves its output: four f-sized tensors. Under autocast pow runs in fp32 (a fp32
        # copy of x), which promotes tanh, 1+tanh and the product to fp32; 0.5*x stays low.
        return f * (12 + mm) if precision.autocast else 4 * f * mm
    if activation is Activation.SWIGLU:
        # gate and up outputs, silu(gate) (saved by the product).
        return 3 * f * mm
    return f * mm  # exact GELU saves its input


def mlp_gradients(activation: Activation) -> int:
    """The f-sized gradients alive at the MLP's elementwise backward: of its two inputs
    (gated: act and up; tanh-GELU: 0.5*x and 1+tanh), or of its one (exact GELU)."""
    return 1 if activation is Activation.GELU else 2


def routing_note(arch: Architecture) -> str:
    """What the analytic model assumes about a sparse MLP's routing, for ``--explain`` ("" for
    a dense MLP)."""
    if not family_of(arch).block.router:
        return ""
    k, e = arch.experts_per_token, arch.num_experts
    return (
        f"each token is routed to its top {k} of {e} experts; transformers' grouped_mm experts "
        f"code runs them on tokens x {k} rows sorted by expert, so the saved tensors do not "
        f"depend on how the router spreads the tokens (evenly: tokens x {k} / {e} rows per "
        "expert); no router auxiliary loss (output_router_logits is off)"
    )


def mlp_rows(arch: Architecture, precision: Precision, tokens: int) -> tuple[int, int]:
    """The rows the MLP's nonlinearity runs on and their bytes per element: the tokens in the
    matmul dtype, or for a sparse mixture of experts every token's routed copies in the
    weights' dtype (:func:`routed_mlp`)."""
    if family_of(arch).block.router:
        return tokens * arch.experts_per_token, precision.param_bytes
    return tokens, precision.matmul_bytes


def norm_backward_tensors(kind: Norm) -> int:
    """The fp32 hidden-sized tensors a norm's backward builds: Python RMSNorm five (the
    output's gradient, the normalised x's, the mean's expanded and divided gradient, pow's 2*x
    and its product), fused LayerNorm two (gradient in and out)."""
    return 5 if kind is Norm.RMS_NORM else 2


def block_per_token(
    spec: Spec, arch: Architecture, precision: Precision, trains: Trains = ALL_TRAIN
) -> float:
    """Bytes one (not checkpointed) block saves per token, including its input, from the
    operators of its family's block (:class:`~freezegen.arch.family.BlockOperators`)."""
    ops = family_of(arch).block
    h, f, n, s = arch.hidden_size, arch.intermediate_size, arch.num_heads, spec.batch.seq_len
    mm = precision.matmul_bytes
    drop = dropout_p(spec, arch) > 0 and trains.any
    eager = spec.model.attention == "eager"
    # Attention core. With one unpadded sequence per row transformers gives sdpa no mask
    # (is_causal) and grouped-query K/V at their own size. Flash (fp16/bf16) and memory-
    # efficient (fp32, no GQA) kernels save q, k, v and the output (also the output
    # projection's input) in the matmul dtype and a fp32 log-sum-exp per head, and drop inside
    # (a seed only). fp32 GQA has neither kernel (flash needs fp16/bf16, memory-efficient equal
    # head counts) and runs the math one, which keeps what eager keeps: q, K/V repeated to all
    # heads (scaled, or contiguous copies), the output only as the output projection's input,
    # and the probabilities.
    kv = arch.kv_heads * arch.head_dim
    probs = eager or (kv != h and mm == 4)  # eager, or fp32 GQA's math kernel
    attn = (h + 2 * (h if probs else kv)) * mm + (
        h * mm if not probs or trains(ops.out_projection) else 0
    )
    if probs:
        softmax = 4 if (ops.eager_softmax_fp32 or precision.autocast) else mm
        attn += n * s * _eager_probs(precision, softmax, drop)
    else:
        attn += 4 * n
    masks = ops.residual_dropouts * h if drop else 0  # bool masks
    # Both norms save their input (pre-LN: the block input and the mid residual; post-LN: the
    # two residual adds); the attention's and the MLP's input linears each save what they read
    # (one cast each under autocast).
    # A sparse MLP's router is the linear reading the MLP's input; its experts read routed copies.
    norms = (
        _norm_saved(precision, h, ops.norm, trains(ops.attention_norm))
        + _norm_saved(precision, h, ops.norm, trains(ops.mlp_norm))
        + _inputs(precision, h, trains, *ops.attention_inputs)
        + _inputs(precision, h, trains, *((ops.router,) if ops.router else ops.mlp_inputs))
    )
    if ops.router:
        return attn + masks + norms + routed_mlp(precision, arch, trains, ops)
    # The nonlinearity's saved tensors, and the down projection's input when its weight trains.
    down_input = f * mm if trains(ops.mlp_output) else 0
    mlp = _activation_saved(precision, f, ops.activation) + down_input
    return attn + masks + norms + mlp


def routed_mlp(
    precision: Precision, arch: Architecture, trains: Trains, ops: BlockOperators
) -> float:
    """Bytes a sparse mixture-of-experts MLP saves per token beyond its router's input, as
    transformers' default ``grouped_mm`` experts implementation runs it.

    Routing: every token goes to exactly ``experts_per_token`` (k) experts, so the experts run
    on tokens x k routed rows sorted by expert, and every tensor below has that many rows
    however the router spreads them (evenly, each of the ``num_experts`` experts would get
    tokens x k / experts). The experts run in the weights' dtype (transformers casts their input
    to it; grouped_mm is no autocast op), so the rows are fp32 under autocast.

    The router keeps its fp32 softmax (``num_experts`` per token), top-k's indices (int64), the
    top-k sum and the weights before their in-place renormalisation (fp32). Per routed row: the
    sort's permutation and the gather index (int64, saved by the two gathers), the gathered
    input (when the gate/up weight trains), the gate/up output (2 x intermediate, saved by silu
    and the product), silu's output, the product (the down projection's input, when its weight
    trains), the down output and its routing weight (saved by the weighting multiply) and the
    inverse permutation (int64, saved by the gather back to token order).
    """
    h, f, k = arch.hidden_size, arch.intermediate_size, arch.experts_per_token
    rows = precision.param_bytes  # bytes per element of a routed row
    router = 4 * arch.num_experts + 8 * k + 4 + 4 * k
    per_row = (
        2 * 8  # sort permutation, gather index
        + (h * rows if trains.count(*ops.mlp_inputs) else 0)  # gathered input
        + 3 * f * rows  # SwiGLU: the fused gate/up output and silu's output
        + (f * rows if trains(ops.mlp_output) else 0)  # the down projection's input
        + h * rows  # the down output, saved by the routing-weight multiply
        + 4  # the routing weight
        + 8  # the inverse permutation
    )
    return router + k * per_row


def head_per_token(
    spec: Spec, arch: Architecture, precision: Precision, trainable: list[Param]
) -> float:
    """Bytes saved per token after the last block, before the logits: the final norm / head
    transform (the last block's output is saved here). A frozen output projection (a tied head
    with frozen embeddings) does not keep its input."""
    family = family_of(arch)
    h, mm = arch.hidden_size, precision.matmul_bytes
    if not family.head.transform:
        # The final norm saves its input; its output feeds the head (or the score layer).
        head_input = linear_inputs(precision, h, 1) if head_trains(spec, arch, trainable) else 0
        return _norm_saved(precision, h, family.block.norm, True) + head_input
    if spec.model.head == "sequence-classification":
        # The pooler reads the [CLS] row: a view that keeps the whole output alive (fp32/
        # pure), or a cast of the row alone (autocast).
        return 0 if precision.autocast else h * mm
    # transform: dense (saves its input) -> gelu (saves dense out) -> LayerNorm (saves the
    # gelu output, a fp32 copy under autocast, and mean/rstd) -> decoder (saves LN out).
    dense_input = decoder_input = linear_inputs(precision, h, 1)
    return dense_input + h * mm + h * (4 if precision.autocast else mm) + 8 + decoder_input


def head_trains(spec: Spec, arch: Architecture, trainable: list[Param]) -> bool:
    """Whether the output projection's weight trains (a tied head trains with the embeddings)."""
    tied = family_of(arch).ties_head(arch, spec.model.head)
    return any(p.kind == HEAD for p in trainable) or (
        tied and any(p.kind == EMBEDDINGS and p.block is None for p in trainable)
    )


def rms_norm(precision: Precision, h: int, weight_trains: bool) -> float:
    """RMSNorm's saved bytes per token, its input included (its output is counted with the
    linears reading it): x.to(fp32) (a copy under bf16-pure), pow and the rsqrt multiply keep
    the fp32 input (else the residual itself) and rsqrt (4 bytes); the weight multiply keeps
    the normalised x (fp32; its bf16 cast under bf16-pure) only when the weight trains."""
    kept = 4 + (4 * h if precision.pure_bf16 else precision.residual_bytes * h)
    if weight_trains:
        kept += 2 * h if precision.pure_bf16 else 4 * h
    return kept


def rms_norm_unrecorded(precision: Precision, h: int) -> float:
    """What an RMSNorm whose input needs no grad does not record per token: pow and the rsqrt
    multiply keep neither the (fp32) input nor rsqrt."""
    return (4 * h if precision.pure_bf16 else precision.residual_bytes * h) + 4


def stem_per_token(arch: Architecture, precision: Precision, dropout: bool) -> float:
    """Bytes the trainable embeddings save per token (the embedding output itself is the first
    block's input): an embedding LayerNorm's input and stats (BERT), the dropout mask."""
    h = arch.hidden_size
    mask = h if dropout else 0
    if family_of(arch).head.embedding_norm:
        return _norm_saved(precision, h, Norm.LAYER_NORM, True) + mask
    return mask
