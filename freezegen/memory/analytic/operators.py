"""What the operators of a family's block (:class:`~freezegen.arch.family.BlockOperators`), its
head and its embeddings save for the backward, per token.

Counted from the operators of the blocks (the traced estimator checks them to the byte at
reduced size). What changes them: the precision (under autocast every linear saves its own
low-precision cast of its input, the residual stream stays fp32, and CUDA runs layer_norm /
softmax / pow in fp32); which weights of a block train (a linear whose weight is frozen does not
save its input; an RMSNorm whose weight is frozen does not save the normalised x; a fully
frozen block runs dropout in eval()); sdpa (q, k, v at their grouped size, output,
log-sum-exp; no mask: one unpadded sequence per row runs is_causal) vs eager and fp32 GQA's math
kernel (the probabilities); packed rows, whose mask sdpa keeps and which repeat grouped K/V
(:func:`packed_mask`); dropout (bool masks). Families add norms on q and k and on the
sublayers' outputs (:func:`qk_norms`, :func:`output_norms`), fused projections whose slices
share one output (``fused_qkv``), and norms that keep their normalised x in fp32.
"""

from __future__ import annotations

from dataclasses import replace

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
    """Which weights of one block train, and which of its linears carry a LoRA adapter. A
    linear saves its input only when its weight trains (the input's gradient needs only the
    weight); a fully frozen block runs its dropout in eval() (the generated script does), so it
    draws no masks. Modules are named by their path inside the block
    (:class:`~freezegen.arch.family.BlockOperators`); a bare parameter (the experts' fused
    weights) by its own path; an adapter by its lora_A weight (``<module>.lora_A.default.
    weight``, as peft names it). ``rank`` and ``dropout``: the adapters' ``r`` and dropout."""

    def __init__(
        self,
        paths: frozenset[str] | None,
        rank: int = 0,
        dropout: float = 0.0,
        quantized: bool = False,
    ) -> None:
        # ``paths``: the block's trainable parameters, named inside the block
        # ("attn.c_attn.weight"); None: everything trains. ``quantized``: the block's frozen
        # linears are stored quantized.
        self.paths = paths
        self.any = paths is None or bool(paths)
        self.rank = rank
        self.dropout = dropout
        self.quantized = quantized

    @classmethod
    def by_block(cls, trainable: list[Param]) -> dict[int, frozenset[str]]:
        """The trainable parameters of each block, named inside it, in one pass."""
        found: dict[int, set[str]] = {}
        for p in trainable:
            if p.block is not None:
                inside = p.name.partition(f".{p.block}.")[2]
                found.setdefault(p.block, set()).add(inside)
        return {block: frozenset(paths) for block, paths in found.items()}

    def __call__(self, module: str) -> bool:
        # A module's weight, or a parameter named as the module (fused expert weights).
        return self.paths is None or f"{module}.weight" in self.paths or module in self.paths

    def count(self, *modules: str) -> int:
        return sum(self(m) for m in modules)

    def adapted(self, module: str) -> bool:
        """Whether ``module`` carries a LoRA adapter."""
        return self.paths is not None and f"{module}{LORA_A}" in self.paths

    def reads(self, module: str) -> bool:
        """Whether something beside ``module`` keeps its very input for the backward: its
        trainable weight, or an adapter without dropout (lora_A reads the input itself)."""
        return self(module) or (self.adapted(module) and not self.dropout)

    def readers(self, *modules: str) -> int:
        """How many matmuls save (a cast of) the input ``modules`` share: each trainable
        weight and each adapter without dropout (lora_A under autocast casts it again)."""
        return sum(self(m) + (self.adapted(m) and not self.dropout) for m in modules)


def linear_output_bytes(precision: Precision, quantized: bool) -> int:
    """Bytes per element of a block linear's output: the matmul dtype, except for a quantized
    linear under autocast, which casts its (compute-dtype) output back to its input's dtype
    (bitsandbytes' ``Linear4bit.forward``), the fp32 residual stream's: what reads it (the
    MLP's nonlinearity, q/k norms, output norms) then keeps fp32 tensors."""
    return precision.residual_bytes if quantized and precision.autocast else precision.matmul_bytes


LORA_A = ".lora_A.default.weight"
"""How peft names an adapter's first matrix below its linear (freezegen.arch.adapters)."""


def adapter_saved(precision: Precision, width: int, trains: Trains, *modules: str) -> float:
    """What the LoRA adapters of ``modules`` (all reading one ``width``-wide input) save per
    token beyond that input, as peft's ``lora.Linear.forward`` runs them
    (``lora_B(lora_A(dropout(x))) * scaling``): lora_B's input, the rank-r intermediate (the
    matmul dtype), and with dropout the bool mask and lora_A's own input, the dropout output
    (or its low-precision cast under autocast): a full-size copy per adapter."""
    adapted = sum(trains.adapted(m) for m in modules)
    per = trains.rank * precision.matmul_bytes
    if trains.dropout:
        per += width * (1 + precision.matmul_bytes)
    return adapted * per


ALL_TRAIN = Trains(None)


def _inputs(precision: Precision, h: int, trains: Trains, *modules: str) -> float:
    """A tensor read by the linears ``modules``: kept once if any of them trains, or one cast
    per training linear under autocast."""
    consumers = trains.readers(*modules)
    if precision.autocast:
        return consumers * 2 * h
    return precision.matmul_bytes * h if consumers else 0


def _norm_saved(precision: Precision, h: int, kind: Norm, weight_trains: bool) -> float:
    """What one norm over the residual stream saves per token, its input included (its output
    is counted with the linears reading it): a fused LayerNorm its input (residual dtype) and
    mean/rstd (2 x 4 bytes); RMSNorm see :func:`rms_norm`."""
    if kind.rms:
        return rms_norm(precision, h, weight_trains, fp32_weight=kind is Norm.RMS_NORM_FP32)
    return h * precision.residual_bytes + 8


def _activation_saved(
    precision: Precision, f: int, activation: Activation, quantized: bool = False
) -> float:
    """What the MLP's nonlinearity saves per token, the down projection's input aside
    (``quantized``: it reads quantized linears' outputs, :func:`linear_output_bytes`)."""
    mm = linear_output_bytes(precision, quantized)
    if activation is Activation.TANH_GELU:
        # 0.5*x*(1+tanh(c*(x+0.044715*x^3))): pow saves x, the final mul saves 0.5*x and 1+tanh,
        # tanh saves its output: four f-sized tensors, three of them in the output's dtype (see
        # activation_output_bytes); 0.5*x stays in the matmul dtype.
        return f * (3 * activation_output_bytes(precision, activation) + mm)
    if activation.gated:
        # gate and up outputs (saved by silu / the fused tanh-GELU and by the product), and
        # the nonlinearity's output (saved by the product).
        return 3 * f * mm
    return f * mm  # exact GELU saves its input


def activation_output_bytes(precision: Precision, activation: Activation) -> int:
    """Bytes per element of the MLP nonlinearity's output, which the down projection reads: the
    matmul dtype, except tanh-GELU under autocast, where CUDA runs pow in fp32 (a fp32 copy of
    x) and the promotion carries through tanh and 1+tanh to the product."""
    if activation is Activation.TANH_GELU and precision.autocast:
        return 4
    return precision.matmul_bytes


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
    """The rows the MLP's nonlinearity runs on and the bytes per element of its output: the
    tokens in the output's dtype (:func:`activation_output_bytes`), or for a sparse mixture of
    experts every token's routed copies in the weights' dtype (:func:`routed_mlp`)."""
    block = family_of(arch).block
    if block.router:
        return tokens * arch.experts_per_token, precision.param_bytes
    return tokens, activation_output_bytes(precision, block.activation)


def norm_backward_tensors(kind: Norm) -> int:
    """The fp32 hidden-sized tensors a norm's backward builds: Python RMSNorm five (the
    output's gradient, the normalised x's, the mean's expanded and divided gradient, pow's 2*x
    and its product), fused LayerNorm two (gradient in and out)."""
    return 5 if kind.rms else 2


def attention_records(ops: BlockOperators, trains: Trains) -> bool:
    """Whether anything of the attention sublayer trains (a weight, a norm, an adapter): when
    nothing does and the block's input needs no grad, autograd records nothing in it."""
    modules = (*ops.attention_inputs, ops.out_projection, *ops.qk_norms, *ops.output_norms[:1])
    norm = () if ops.attention_norm is None else (ops.attention_norm,)
    return any(trains(m) or trains.adapted(m) for m in (*modules, *norm))


def attention_keeps_probabilities(spec: Spec, arch: Architecture, precision: Precision) -> bool:
    """Whether the attention runs a kernel that keeps the probabilities (eager, or fp32 GQA's
    math kernel, see :func:`block_per_token`) rather than q, k, v and its output. Packed rows
    give sdpa a mask and K/V repeated to every head (:func:`packed_mask`): fp32 then runs the
    memory-efficient kernel, which takes both."""
    fp32_gqa = arch.kv_heads != arch.num_heads and precision.matmul_bytes == 4
    return spec.model.attention == "eager" or (fp32_gqa and not packed_mask(spec, arch))


def packed_mask(spec: Spec, arch: Architecture) -> bool:
    """Whether every block's sdpa gets an explicit (b, 1, s, s) mask because the rows are packed.

    Packed rows (``data.packed_rows``) carry position_ids that restart at every document and no
    attention mask; a family that keeps the documents apart (``Family.packed_documents``) then
    has transformers' ``create_causal_mask`` find the restarts (``find_packed_sequence_indices``)
    and build a boolean (b, 1, s, s) mask where an unpacked row gets none (sdpa's is_causal).
    With a mask, transformers' sdpa integration gives up grouped heads (``use_gqa_in_sdpa``:
    CUDA needs no mask for them) and repeats K and V to every head (``repeat_kv``), and the
    kernel that runs, memory-efficient attention (flash takes no mask), converts the mask to
    the query's dtype and keeps it as its bias for the backward: one per block
    (:func:`packed_mask_bytes`). Eager attention builds the same-sized float mask for packed and
    unpacked rows alike and only adds it to the scores (saving nothing): packing changes
    nothing there."""
    return (
        spec.data.packed_rows
        and spec.model.attention == "sdpa"
        and family_of(arch).packed_documents
    )


def packed_mask_bytes(spec: Spec, precision: Precision) -> int:
    """Bytes of the bias one block's sdpa keeps for packed rows (:func:`packed_mask`): the
    (b, 1, s, s) mask in the query's dtype (the matmul dtype), unrounded."""
    s = spec.batch.seq_len
    return spec.batch.micro_batch_size * s * s * precision.matmul_bytes


def packing_note(spec: Spec, arch: Architecture) -> str:
    """What the analytic model assumes about packed rows' attention, for ``--explain`` (""
    when the rows are not packed)."""
    if not spec.data.packed_rows:
        return ""
    family = family_of(arch)
    if not family.packed_documents:
        return (
            f"packed rows: {family.name}'s attention mask ignores the position_ids restarts "
            "(the packed documents attend to each other), so packing changes nothing it keeps"
        )
    if not packed_mask(spec, arch):
        return (
            "packed rows: eager attention builds the same (b, 1, s, s) mask for packed and "
            "unpacked rows and only adds it to the scores, so packing changes nothing it keeps"
        )
    grouped = (
        ", grouped K/V repeated to every head (the mask rules out sdpa's grouped heads)"
        if arch.kv_heads != arch.num_heads
        else ""
    )
    return (
        "packed rows: position_ids restart at every document, so transformers gives each "
        "block's sdpa a (b, 1, s, s) mask instead of is_causal; each block keeps it in the "
        f"query's dtype (the memory-efficient kernel's bias){grouped}"
    )


def shared_mask_bytes(spec: Spec) -> int:
    """Bytes of one boolean (b, 1, s, s) mask transformers builds once per forward for packed
    rows (:func:`packed_mask`; ``Family.attention_masks`` of them), unrounded: alive through the
    backward only while a checkpointed block, which keeps its arguments for its recomputation,
    has not run its backward."""
    s = spec.batch.seq_len
    return spec.batch.micro_batch_size * s * s


def block_per_token(
    spec: Spec,
    arch: Architecture,
    precision: Precision,
    trains: Trains = ALL_TRAIN,
    *,
    quiet_attention: bool = False,
) -> float:
    """Bytes one (not checkpointed) block saves per token, including its input, from the
    operators of its family's block (:class:`~freezegen.arch.family.BlockOperators`).

    ``quiet_attention``: the block's input needs no grad and its attention trains nothing
    (:func:`attention_records`), as in the lowest block of MLP-only adapters: autograd records
    nothing before the MLP, so the attention, its norms, the norm before the MLP (pre-norm)
    and the attention's residual dropout save nothing."""
    if quiet_attention:
        return _mlp_side_per_token(spec, arch, precision, trains)
    ops = family_of(arch).block
    h, f, n, s = arch.hidden_size, arch.intermediate_size, arch.num_heads, spec.batch.seq_len
    mm = precision.matmul_bytes
    drop = dropout_p(spec, arch) > 0 and trains.any
    # Attention core. With one unpadded sequence per row transformers gives sdpa no mask
    # (is_causal) and grouped-query K/V at their own size. Flash (fp16/bf16) and memory-
    # efficient (fp32, no GQA) kernels save q, k, v and the output (also the output
    # projection's input) in the matmul dtype and a fp32 log-sum-exp per head, and drop inside
    # (a seed only). fp32 GQA has neither kernel (flash needs fp16/bf16, memory-efficient equal
    # head counts) and runs the math one, which keeps what eager keeps: q, K/V repeated to all
    # heads (scaled, or contiguous copies), the output only as the output projection's input,
    # and the probabilities.
    # Packed rows give sdpa a mask, which turns grouped heads off: K/V repeated to all heads
    # (the mask itself is counted per block apart, see packed_mask).
    # q and the output are num_heads * head_dim wide (the hidden size unless the config sets
    # head_dim: qwen3, gemma).
    q, kv = arch.attention_width, arch.kv_heads * arch.head_dim
    probs = attention_keeps_probabilities(spec, arch, precision)
    repeated = probs or (packed_mask(spec, arch) and arch.kv_heads != arch.num_heads)
    attn = (q + 2 * (q if repeated else kv)) * mm + (
        q * mm if not probs or trains.reads(ops.out_projection) else 0
    )
    if probs:
        softmax = 4 if (ops.eager_softmax_fp32 or precision.autocast) else mm
        attn += n * s * _eager_probs(precision, softmax, drop)
    else:
        attn += 4 * n
        if ops.fused_qkv and not repeated:
            # The kernel saves v, a view of the fused projection's output, which keeps q's and
            # k's slices alive with it (q and k themselves are saved after the rotary); a
            # repeated v is a copy of its own.
            attn += (q + kv) * mm
    masks = ops.residual_dropouts * h if drop else 0  # bool masks
    attn += qk_norms(precision, arch, ops, trains)
    # Both norms save their input (pre-LN: the block input and the mid residual; post-LN: the
    # two residual adds); the attention's and the MLP's input linears each save what they read
    # (one cast each under autocast). Without pre-norms (olmo2) the linears read the residual.
    # A sparse MLP's router is the linear reading the MLP's input; its experts read routed copies.
    norms = (
        sum(
            _norm_saved(precision, h, ops.norm, trains(norm))
            for norm in (ops.attention_norm, ops.mlp_norm)
            if norm is not None
        )
        + _inputs(precision, h, trains, *ops.attention_inputs)
        + _inputs(precision, h, trains, *((ops.router,) if ops.router else ops.mlp_inputs))
        + output_norms(precision, h, ops, trains)
    )
    # LoRA adapters beside the linears (a mixture of experts' fused weights take none).
    adapters = adapter_saved(precision, h, trains, *ops.attention_inputs) + adapter_saved(
        precision, q, trains, ops.out_projection
    )
    if ops.router:
        return attn + masks + norms + adapters + routed_mlp(precision, arch, trains, ops)
    adapters += adapter_saved(precision, h, trains, *ops.mlp_inputs) + adapter_saved(
        precision, f, trains, ops.mlp_output
    )
    # The nonlinearity's saved tensors, and the down projection's input when its weight trains
    # (or an adapter reads it).
    down_input = f * mm if trains.reads(ops.mlp_output) else 0
    mlp = _activation_saved(precision, f, ops.activation, trains.quantized) + down_input
    return attn + masks + norms + mlp + adapters


def _mlp_side_per_token(
    spec: Spec, arch: Architecture, precision: Precision, trains: Trains
) -> float:
    """What a block saves when autograd starts recording at its MLP (see
    :func:`block_per_token`'s ``quiet_attention``)."""
    ops = family_of(arch).block
    h, f = arch.hidden_size, arch.intermediate_size
    mm = precision.matmul_bytes
    drop = dropout_p(spec, arch) > 0 and trains.any
    masks = max(ops.residual_dropouts - 1, 0) * h if drop else 0  # the MLP's own
    # Post-LN: the MLP's norm follows the MLP, whose output needs grad: it saves as usual.
    norm = (
        _norm_saved(precision, h, ops.norm, trains(ops.mlp_norm))
        if ops.post_norm and ops.mlp_norm is not None
        else 0
    )
    mlp_out_norm = ops.output_norms[1:]
    outputs = output_norms(precision, h, replace(ops, output_norms=mlp_out_norm), trains)
    inputs = _inputs(precision, h, trains, *((ops.router,) if ops.router else ops.mlp_inputs))
    if ops.router:
        return masks + norm + outputs + inputs + routed_mlp(precision, arch, trains, ops)
    down_input = f * mm if trains.reads(ops.mlp_output) else 0
    adapters = adapter_saved(precision, h, trains, *ops.mlp_inputs) + adapter_saved(
        precision, f, trains, ops.mlp_output
    )
    mlp = _activation_saved(precision, f, ops.activation, trains.quantized) + down_input
    return masks + norm + outputs + inputs + mlp + adapters


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


def rms_norm(
    precision: Precision,
    h: int,
    weight_trains: bool,
    *,
    input_bytes: int | None = None,
    rows: int = 1,
    fp32_weight: bool = False,
) -> float:
    """RMSNorm's saved bytes per token, its input included (its output is counted with the
    linears reading it), over ``h`` values normalised in ``rows`` groups (one per head for a
    per-head q/k norm) of an input of ``input_bytes`` (default: the residual stream's).

    x.to(fp32) (a copy of a 16-bit input, a fp32 input itself) is kept by pow and the rsqrt
    multiply, with one fp32 rsqrt per row; the weight multiply keeps the normalised x only when
    the weight trains: cast back to the input dtype first (llama), or in fp32 (``fp32_weight``:
    olmo2's weight, gemma's 1 + weight multiply before the cast)."""
    x_bytes = precision.residual_bytes if input_bytes is None else input_bytes
    kept = 4 * rows + 4 * h
    if weight_trains:
        kept += 4 * h if fp32_weight else x_bytes * h
    return kept


def qk_norms(
    precision: Precision, arch: Architecture, ops: BlockOperators, trains: Trains
) -> float:
    """What the norms on the queries and keys (:attr:`BlockOperators.qk_norms`) save per token:
    each an RMSNorm (:func:`rms_norm`) of its projection's output (the matmul dtype), q's
    num_heads * head_dim wide, k's num_kv_heads * head_dim, per head or over the whole
    projection. Their output replaces q and k where the attention saves them, so nothing
    else changes."""
    if not ops.qk_norms:
        return 0
    q_norm, k_norm = ops.qk_norms
    widths = ((q_norm, arch.num_heads), (k_norm, arch.kv_heads))
    return sum(
        rms_norm(
            precision,
            heads * arch.head_dim,
            trains(norm),
            input_bytes=linear_output_bytes(precision, trains.quantized),
            rows=heads if ops.qk_norm_per_head else 1,
            fp32_weight=ops.norm is Norm.RMS_NORM_FP32,
        )
        for norm, heads in widths
    )


def output_norms(precision: Precision, h: int, ops: BlockOperators, trains: Trains) -> float:
    """What norms on the attention's and the MLP's outputs (:attr:`BlockOperators.output_norms`:
    olmo2's and gemma's post-norms) save per token: each an RMSNorm (:func:`rms_norm`) of a
    projection's output (the matmul dtype, not the residual stream: nothing else keeps it)."""
    return sum(
        rms_norm(
            precision,
            h,
            trains(norm),
            input_bytes=linear_output_bytes(precision, trains.quantized),
            fp32_weight=ops.norm is Norm.RMS_NORM_FP32,
        )
        for norm in ops.output_norms
    )


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
