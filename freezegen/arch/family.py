"""What a model family is to freezegen: one :class:`Family` object per file in ``families/``.

A family holds everything freezegen knows about one Hugging Face architecture without building
it: the ``model_type`` values it accepts, how its ``config.json`` is read and defaulted, the
transformers config a preset becomes, its dropout keys, its module names per kind, its parameter
table, whether its output head is tied, its position embeddings, and the operators of one block
from which the analytic estimator derives what the block saves. Everything else asks the family
and never compares family names. Torch-free: ``freezegen lint`` imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from freezegen.spec.presets import Architecture

if TYPE_CHECKING:
    from freezegen.arch.params import Param

CAUSAL_LM, SEQUENCE_CLASSIFICATION = "causal-lm", "sequence-classification"


class Positions(Enum):
    """How a family encodes positions, which decides what a too-long sequence does."""

    LEARNED = "learned"
    """A position embedding table: a longer sequence fails with an index error."""
    ROTARY = "rotary"
    """Rotary embeddings: a longer sequence runs, beyond the trained context."""


class Norm(Enum):
    """The normalisation a block uses, as far as memory is concerned."""

    LAYER_NORM = "layer_norm"
    """Fused LayerNorm: saves its input and mean/rstd, whether or not its weight trains."""
    RMS_NORM = "rms_norm"
    """RMSNorm in Python: pow, rsqrt and the weight multiply each record what they need; the
    weight multiplies the normalised x cast back to the input dtype (llama, qwen3, phi3)."""
    RMS_NORM_FP32 = "rms_norm_fp32"
    """RMSNorm in Python whose weight (olmo2) or 1 + weight (gemma) multiplies the fp32
    normalised x, the product cast back after: the multiply keeps the normalised x in fp32."""

    @property
    def rms(self) -> bool:
        """Whether this is an RMSNorm written in Python (as opposed to fused LayerNorm)."""
        return self is not Norm.LAYER_NORM


class Activation(Enum):
    """The MLP's nonlinearity, as far as memory is concerned."""

    TANH_GELU = "tanh_gelu"
    """0.5*x*(1+tanh(c*(x+0.044715*x^3))) built from elementwise ops (GPT-2's gelu_new)."""
    GELU = "gelu"
    """Exact GELU, one fused op."""
    SWIGLU = "swiglu"
    """silu(gate) * up, from two projections."""
    GEGLU = "geglu"
    """gelu_tanh(gate) * up, from two projections (gemma): the fused tanh-GELU saves its
    input, so memory is SwiGLU's."""

    @property
    def gated(self) -> bool:
        """Whether the nonlinearity of one projection multiplies another projection."""
        return self in (Activation.SWIGLU, Activation.GEGLU)


@dataclass(frozen=True)
class BlockOperators:
    """The operators of one transformer block, named by the modules that run them.

    Modules are named by their path inside the block (``self_attn.q_proj``, ``mlp.c_proj``):
    the estimator asks whether their weights train.
    """

    norm: Norm
    attention_norm: str | None
    """The norm whose output the attention reads (pre-norm) or that follows it (post-LN BERT);
    None when the attention reads the residual stream itself (olmo2)."""
    mlp_norm: str | None
    attention_inputs: tuple[str, ...]
    """The linears reading the attention's input (c_attn; q, k, v)."""
    out_projection: str
    """The attention's output projection (it saves the attention output)."""
    mlp_inputs: tuple[str, ...]
    """The linears reading the MLP's input (c_fc; gate, up; intermediate)."""
    mlp_output: str
    """The MLP's down projection (it saves the activation's output)."""
    activation: Activation
    residual_dropouts: int
    """Dropouts on the residual branches (bool masks in training)."""
    eager_softmax_fp32: bool
    """Whether eager attention runs its softmax in fp32 whatever the input dtype."""
    qk_norms: tuple[str, ...] = ()
    """Norms on the queries and on the keys (qwen3, olmo2, gemma3), in that order; none by
    default."""
    qk_norm_per_head: bool = False
    """Whether the q/k norms normalise each head on its own (qwen3: one rsqrt per head) or
    the whole projection (olmo2: one per token)."""
    fused_qkv: bool = False
    """Whether q, k and v are slices of one projection's output (phi3's qkv_proj): v, saved
    as it is by the flash and memory-efficient kernels, is a view that keeps all of it alive."""
    output_norms: tuple[str, ...] = ()
    """Norms on the attention's and on the MLP's output, before the residual add (olmo2,
    gemma3)."""
    post_norm: bool = False
    """Whether the norms follow their sublayers (post-LN BERT: ``attention_norm`` normalises the
    attention's residual sum, ``mlp_norm`` the MLP's) instead of preceding them."""
    router: str | None = None
    """A sparse mixture-of-experts MLP's router linear (None: a dense MLP). ``mlp_inputs`` and
    ``mlp_output`` then name the experts' fused 3-D weights, which run on every token's
    ``experts_per_token`` routed copies (see ``routed_mlp`` in memory/analytic/operators.py)."""


@dataclass(frozen=True)
class HeadOperators:
    """What runs between the last block and the loss."""

    transform: bool
    """False: a final norm, then the output projection. True (BERT): the LM head's transform
    (dense, GELU, LayerNorm) before its decoder, and a pooler over [CLS] for classification."""
    embedding_norm: bool = False
    """Whether the embeddings end in a LayerNorm (BERT) that saves its input."""


class UnsupportedConfig(Exception):
    """A config.json option the family's parameter table cannot express."""


@dataclass(frozen=True)
class Family:
    """One model family (see the module docstring).

    ``read_config(model_type, config)`` returns the Architecture of a config.json of one of
    ``model_types``; it raises :class:`UnsupportedConfig` for an option the parameter table
    cannot express and KeyError / ValueError / TypeError for a missing or invalid field.
    ``preset_config(arch)`` returns the transformers config keyword arguments of a preset (its
    dimensions; the vocabulary and dropout are added by the caller). ``parameters(arch, head,
    num_labels, tied)`` returns the parameter table in ``named_parameters()`` order.
    """

    name: str
    model_types: tuple[str, ...]
    read_config: Callable[[str, dict[str, Any]], Architecture]
    preset_config: Callable[[Architecture], dict[str, Any]]
    parameters: Callable[[Architecture, str, int, bool], list[Param]]
    dropout_keys: tuple[str, ...]
    modules: Mapping[str, tuple[str, ...]]
    """Module names per parameter kind (embeddings, attention, mlp, norm, head): a parameter
    is of the kind whose module name it holds, the longest match winning. The trace and the
    generated script pass them to freezegen.runtime.freezing (``module_kind``) as data."""
    positions: Positions
    block: BlockOperators
    head: HeadOperators
    causal_lm_config: Mapping[str, Any] = field(default_factory=dict)
    """Config settings a causal-LM head needs (BERT: is_decoder)."""
    heads: tuple[str, ...] = (CAUSAL_LM, SEQUENCE_CLASSIFICATION)
    """The heads transformers has a class for."""
    output_head: str = "lm_head"
    """The causal-LM head's output projection (vocabulary logits). Tied, its weight is the
    token embedding and the parameter table has no entry for it, but the module is still a
    linear that must never be quantized."""
    conv1d_blocks: bool = False
    """Whether the linears inside the blocks are transformers' Conv1D (GPT-2), which stores a
    weight as (in, out) where nn.Linear stores (out, in) (see freezegen.arch.linears)."""
    packed_documents: bool = True
    """Whether the causal-LM model keeps packed documents apart: transformers builds its mask
    from position_ids restarts when given no attention mask (``create_causal_mask``, every
    attention implementation); BERT's decoder mask ignores them."""
    attention_masks: int = 1
    """How many attention masks the causal-LM model builds for its blocks when it builds any (a
    (b, 1, s, s) tensor each, shared by the blocks that use it): gemma3 always builds a full and
    a sliding-window one (its ``causal_mask_mapping``), the other families one."""

    def ties_head(self, arch: Architecture, head: str) -> bool:
        """Whether the output head is the token embedding (one tensor, one gradient sum).

        The one answer the parameter table, the estimators and lint use: a causal-LM head
        whose config ties word embeddings; a classification head never is.
        """
        return head == CAUSAL_LM and arch.tie_word_embeddings

    def parameter_table(self, arch: Architecture, head: str, num_labels: int) -> list[Param]:
        """Every parameter of ``arch`` with ``head``, in model order (a tied head has none)."""
        return self.parameters(arch, head, num_labels, self.ties_head(arch, head))


def config_int(cfg: dict[str, Any], *names: str, default: int | None = None) -> int:
    """The first of ``names`` set in ``cfg`` as a non-negative int, else ``default``.

    Raises ValueError for a value that is not one, KeyError when none is set and there is no
    default.
    """
    for name in names:
        value = cfg.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}")
            return value
    if default is None:
        raise KeyError(names[0])
    return default
