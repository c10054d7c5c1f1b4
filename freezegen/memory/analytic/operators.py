"""What the operators of each family's Hugging Face block save for the backward, per token.

Counted from the operators of the blocks (the traced estimator checks them to the byte at
reduced size). What changes them: the precision (under autocast every linear saves its own
low-precision cast of its input, the residual stream stays fp32, and CUDA runs layer_norm /
softmax / pow in fp32); which weights of a block train (a linear whose weight is frozen does not
save its input; an RMSNorm whose weight is frozen does not save the normalised x; a fully
frozen block runs dropout in eval()); sdpa (q, k, v, output, log-sum-exp, the decoders' (b, 1,
s, s) mask) vs eager (the probabilities); dropout (bool masks).
"""

from __future__ import annotations

from freezegen.arch.params import EMBEDDINGS, HEAD, Param
from freezegen.spec.models import Spec
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture


def dropout_p(spec: Spec, arch: Architecture) -> float:
    """The dropout probability the run uses: the spec's override, else the config's."""
    return arch.dropout if spec.model.dropout is None else spec.model.dropout


def linear_inputs(d: Precision, h: int, consumers: int) -> float:
    """A (norm) output read by ``consumers`` linears: one shared tensor, or one cast each."""
    return (consumers * 2 if d.autocast else d.matmul_bytes) * h


def _eager_probs(d: Precision, softmax_bytes: int, dropout: bool) -> float:
    """Per head and key position: the softmax output (saved by softmax backward), then either
    the dropout output and its bool mask, or the value-dtype copy that the matmul saves."""
    if dropout:
        return softmax_bytes + d.matmul_bytes + 1
    return softmax_bytes + (d.matmul_bytes if d.matmul_bytes != softmax_bytes else 0)


class Trains:
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


ALL_TRAIN = Trains(None, None)


def _inputs(d: Precision, h: int, trains: Trains, *modules: str) -> float:
    """A tensor read by the linears ``modules``: kept once if any of them trains, or one cast
    per training linear under autocast."""
    consumers = trains.count(*modules)
    if d.autocast:
        return consumers * 2 * h
    return d.matmul_bytes * h if consumers else 0


def block_per_token(
    spec: Spec, arch: Architecture, d: Precision, trains: Trains = ALL_TRAIN
) -> float:
    """Bytes one (not checkpointed) block saves per token, including its input."""
    h, f, n, s = arch.hidden_size, arch.intermediate_size, arch.num_heads, spec.batch.seq_len
    mm = d.matmul_bytes
    drop = dropout_p(spec, arch) > 0 and trains.any
    eager = spec.model.attention == "eager"
    # Attention core. sdpa saves q, k, v (GQA keys/values repeated to all heads) and its output
    # (also the o_proj input) in the matmul dtype, a fp32 log-sum-exp per head and, for the
    # causal decoders, the (b, 1, s, s) additive mask in the matmul dtype. Flash/efficient
    # kernels drop inside (a seed only). Eager saves the same four hidden-sized tensors (as
    # contiguous copies) plus the probabilities.
    out_proj = {"gpt2": "attn.c_proj", "bert": "attention.output.dense", "llama": "o_proj"}[
        arch.family
    ]
    attn = 3 * h * mm + (h * mm if not eager or trains(out_proj) else 0)
    if eager:
        softmax = 4 if (arch.family == "llama" or d.autocast) else mm
        attn += n * s * _eager_probs(d, softmax, drop)
    else:
        attn += 4 * n + (s * mm if arch.family in ("gpt2", "llama") else 0)
    masks = 2 * h if drop else 0  # two residual dropouts: bool masks
    if arch.family == "gpt2":
        # Pre-LN: both LayerNorms save their input (block input, mid residual: res dtype) and
        # mean/rstd (2 x 4 bytes); each output feeds one linear (c_attn, c_fc).
        norms = (
            2 * h * d.residual_bytes
            + 2 * 8
            + _inputs(d, h, trains, "c_attn")
            + _inputs(d, h, trains, "c_fc")
        )
        # tanh-GELU 0.5*x*(1+tanh(c*(x+0.044715*x^3))): pow saves x, the final mul saves 0.5*x and
        # 1+tanh, tanh saves its output, c_proj saves the product: five f-sized tensors. Under
        # autocast pow runs in fp32 (a fp32 copy of x), which promotes tanh, 1+tanh and the
        # product to fp32; 0.5*x stays low and c_proj saves its own cast.
        mlp = f * (12 + mm) if d.autocast else 4 * f * mm
        mlp += (2 if d.autocast else mm) * f if trains("mlp.c_proj") else 0
        return attn + masks + norms + mlp
    if arch.family == "bert":
        # Post-LN. The block input (an LN output) is saved by q, k, v (one cast each under
        # autocast); both residual adds are saved by their LayerNorm (res dtype) with mean/rstd;
        # the attention LN output feeds the intermediate dense. Exact GELU saves its input and
        # the output dense its output: two f-sized tensors.
        norms = (
            _inputs(d, h, trains, "query", "key", "value")
            + 2 * h * d.residual_bytes
            + 2 * 8
            + _inputs(d, h, trains, "intermediate.dense")
        )
        mlp = f * mm + (f * mm if trains("output.dense") else 0)
        return attn + masks + norms + mlp
    # llama/mistral/qwen2: RMSNorm in Python. x.to(fp32) (a copy under bf16-pure), pow saves it
    # (fp32/autocast: the residual itself), rsqrt (4 bytes) and the normalised x (fp32; bf16-pure
    # saves its bf16 cast as well) are saved for the weight multiply, whose output feeds q, k, v
    # (three casts under autocast) and gate, up (two).
    norms = (
        rms_norm(d, h, trains("input_layernorm"))
        + rms_norm(d, h, trains("post_attention_layernorm"))
        + _inputs(d, h, trains, "q_proj", "k_proj", "v_proj")
        + _inputs(d, h, trains, "gate_proj", "up_proj")
    )
    # SwiGLU: gate and up outputs, silu(gate) (saved by the product), the product (down_proj
    # input).
    mlp = 3 * f * mm + (f * mm if trains("down_proj") else 0)
    # (llama-style blocks have no residual dropout: attention_dropout only.)
    return attn + norms + mlp


def head_per_token(spec: Spec, arch: Architecture, d: Precision, trainable: list[Param]) -> float:
    """Bytes saved per token after the last block, before the logits: the final norm / head
    transform (the last block's output is saved here). A frozen output projection (a tied head
    with frozen embeddings) does not keep its input."""
    h, mm = arch.hidden_size, d.matmul_bytes
    head_input = linear_inputs(d, h, 1) if head_trains(spec, arch, trainable) else 0
    if arch.family == "gpt2":
        # ln_f saves its input and mean/rstd; its output feeds the head (or the score layer).
        return h * d.residual_bytes + 8 + head_input
    if arch.family == "bert":
        if spec.model.head == "sequence-classification":
            # The pooler reads the [CLS] row: a view that keeps the whole output alive (fp32/
            # pure), or a cast of the row alone (autocast).
            return 0 if d.autocast else h * mm
        # transform: dense (saves its input) -> gelu (saves dense out) -> LayerNorm (saves the
        # gelu output, a fp32 copy under autocast, and mean/rstd) -> decoder (saves LN out).
        return (
            linear_inputs(d, h, 1)
            + h * mm
            + h * (4 if d.autocast else mm)
            + 8
            + (linear_inputs(d, h, 1))
        )
    return rms_norm(d, h, True) + head_input


def head_trains(spec: Spec, arch: Architecture, trainable: list[Param]) -> bool:
    """Whether the output projection's weight trains (a tied head trains with the embeddings)."""
    tied = spec.model.head == "causal-lm" and (
        arch.family == "gpt2" or (arch.family == "llama" and arch.tie_word_embeddings)
    )
    return any(p.kind == HEAD for p in trainable) or (
        tied and any(p.kind == EMBEDDINGS and p.block is None for p in trainable)
    )


def rms_norm(d: Precision, h: int, weight_trains: bool) -> float:
    """RMSNorm's saved bytes per token, its input included (its output is counted with the
    linears reading it): pow and the rsqrt multiply keep the fp32 input (a copy under
    bf16-pure, else the residual itself) and rsqrt; the weight multiply keeps the normalised
    x (fp32; its bf16 cast under bf16-pure) only when the weight trains."""
    kept = 4 + (4 * h if d.pure_bf16 else d.residual_bytes * h)
    if weight_trains:
        kept += 2 * h if d.pure_bf16 else 4 * h
    return kept


def stem_per_token(arch: Architecture, d: Precision, dropout: bool) -> float:
    """Bytes the trainable embeddings save per token (the embedding output itself is the first
    block's input): BERT's embedding LayerNorm input and stats, the embedding dropout mask."""
    h = arch.hidden_size
    mask = h if dropout else 0
    if arch.family == "bert":
        return h * d.residual_bytes + 8 + mask
    return mask
