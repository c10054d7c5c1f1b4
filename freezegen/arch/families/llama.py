"""Llama (LlamaForCausalLM / LlamaForSequenceClassification): rotary positions, grouped-query
attention, RMSNorm in Python, SwiGLU, no residual dropout; ``attention_bias`` puts a bias on all
four attention projections. Mistral and Qwen2 share this layout (:mod:`.mistral`, :mod:`.qwen2`)
and build on the pieces here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from freezegen.arch.family import (
    SEQUENCE_CLASSIFICATION,
    Activation,
    BlockOperators,
    Family,
    HeadOperators,
    Norm,
    Positions,
    UnsupportedConfig,
    config_int,
)
from freezegen.arch.params import ATTENTION, EMBEDDINGS, HEAD, MLP, Param, linear, norm
from freezegen.spec.presets import Architecture

QK_NORMS = ("self_attn.q_norm", "self_attn.k_norm")
"""The q/k norms' paths inside a block (qwen3, olmo2): their module names of the norm kind
(longer than ``self_attn``, so they win over the attention's)."""


def decoder_architecture(
    family: str,
    model_type: str,
    cfg: dict[str, Any],
    *,
    qkv_bias: bool,
    head_dim: int | None = None,
) -> Architecture:
    """The Architecture of a llama-layout config.json (qkv_bias as the family decides it).

    ``head_dim``: the config's head_dim default for a family whose attention reads it (qwen3:
    128; olmo2, phi3: hidden_size // num_attention_heads, passed as 0); None for one whose
    table assumes hidden_size // num_attention_heads, which raises UnsupportedConfig for a
    config setting another.
    """
    heads = config_int(cfg, "num_attention_heads")
    hidden = config_int(cfg, "hidden_size")
    explicit = None
    if head_dim is not None:
        explicit = config_int(cfg, "head_dim", default=head_dim or hidden // max(heads, 1))
    elif cfg.get("head_dim") is not None and heads > 0 and cfg["head_dim"] != hidden // heads:
        raise UnsupportedConfig(
            f"head_dim={cfg['head_dim']!r} is not hidden_size // num_attention_heads"
        )
    return Architecture(
        family,
        model_type,
        config_int(cfg, "num_hidden_layers"),
        config_int(cfg, "hidden_size"),
        heads,
        config_int(cfg, "intermediate_size"),
        config_int(cfg, "vocab_size"),
        config_int(cfg, "max_position_embeddings", default=2048),
        num_kv_heads=config_int(cfg, "num_key_value_heads", default=heads),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=qkv_bias,
        dropout=float(cfg.get("attention_dropout", 0.0)),
        explicit_head_dim=explicit,
    )


def decoder_preset_config(arch: Architecture) -> dict[str, Any]:
    """The config keyword arguments of a llama-layout preset."""
    return {
        "num_hidden_layers": arch.num_layers,
        "hidden_size": arch.hidden_size,
        "num_attention_heads": arch.num_heads,
        "num_key_value_heads": arch.kv_heads,
        "intermediate_size": arch.intermediate_size,
        "max_position_embeddings": arch.max_positions,
        "tie_word_embeddings": arch.tie_word_embeddings,
    }


def head_dim_preset_config(arch: Architecture) -> dict[str, Any]:
    """The config keyword arguments of a llama-layout preset whose attention reads head_dim."""
    return {**decoder_preset_config(arch), "head_dim": arch.head_dim}


def swiglu_mlp(prefix: str, a: Architecture, block: int) -> list[Param]:
    """The parameters of a llama-layout block's dense MLP (``prefix``: the block's path)."""
    h, f = a.hidden_size, a.intermediate_size
    out = linear(f"{prefix}.mlp.gate_proj", f, h, MLP, block, bias=False)
    out += linear(f"{prefix}.mlp.up_proj", f, h, MLP, block, bias=False)
    out += linear(f"{prefix}.mlp.down_proj", h, f, MLP, block, bias=False)
    return out


def decoder_parameters(
    a: Architecture,
    head: str,
    labels: int,
    tied: bool,
    *,
    output_bias: bool,
    qk_norms: tuple[int, int] | None = None,
    layer_norms: tuple[str, str] = ("input_layernorm", "post_attention_layernorm"),
    mlp: Callable[[str, Architecture, int], list[Param]] = swiglu_mlp,
) -> list[Param]:
    """The parameter table of a llama-layout model (q/k/v biases from ``a.qkv_bias``), with
    ``qk_norms`` (the widths of q_norm and k_norm after the attention's projections), each
    block's MLP from ``mlp`` and the block's two ``layer_norms`` after its MLP."""
    h, d, q = a.hidden_size, a.head_dim, a.attention_width
    kv = a.kv_heads * d
    out = [Param("model.embed_tokens.weight", (a.vocab_size, h), EMBEDDINGS)]
    for i in range(a.num_layers):
        p = f"model.layers.{i}"
        # Decoder layers register self_attn, mlp, then the two norms.
        out += linear(f"{p}.self_attn.q_proj", q, h, ATTENTION, i, a.qkv_bias)
        out += linear(f"{p}.self_attn.k_proj", kv, h, ATTENTION, i, a.qkv_bias)
        out += linear(f"{p}.self_attn.v_proj", kv, h, ATTENTION, i, a.qkv_bias)
        out += linear(f"{p}.self_attn.o_proj", h, q, ATTENTION, i, output_bias)
        if qk_norms is not None:
            # Norms, though inside self_attn: a freeze of `norm` takes them, one of
            # `attention` does not (the generated script's module-name rule agrees).
            out += norm(f"{p}.self_attn.q_norm", qk_norms[0], i, bias=False)
            out += norm(f"{p}.self_attn.k_norm", qk_norms[1], i, bias=False)
        out += mlp(p, a, i)
        for layer_norm in layer_norms:
            out += norm(f"{p}.{layer_norm}", h, i, bias=False)
    return out + decoder_tail(a, head, labels, tied)


def decoder_tail(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    """The final norm and the output head of a llama-layout model (no head when it is tied)."""
    h = a.hidden_size
    out = norm("model.norm", h, None, bias=False)
    if head == SEQUENCE_CLASSIFICATION:
        out.append(Param("score.weight", (labels, h), HEAD))
    elif not tied:
        out.append(Param("lm_head.weight", (a.vocab_size, h), HEAD))
    return out


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    if cfg.get("mlp_bias"):
        raise UnsupportedConfig("mlp_bias adds biases to the MLP projections")
    return decoder_architecture(
        "llama", model_type, cfg, qkv_bias=bool(cfg.get("attention_bias", False))
    )


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {**decoder_preset_config(arch), "attention_bias": arch.qkv_bias}


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    return decoder_parameters(a, head, labels, tied, output_bias=a.qkv_bias)


FAMILY = Family(
    name="llama",
    model_types=("llama",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    dropout_keys=("attention_dropout",),
    modules={
        "embeddings": ("embed_tokens",),
        "attention": ("self_attn",),
        "mlp": ("mlp",),
        "norm": ("input_layernorm", "post_attention_layernorm", "norm"),
        "head": ("lm_head", "score"),
    },
    positions=Positions.ROTARY,
    block=BlockOperators(
        norm=Norm.RMS_NORM,
        attention_norm="input_layernorm",
        mlp_norm="post_attention_layernorm",
        attention_inputs=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
        out_projection="self_attn.o_proj",
        mlp_inputs=("mlp.gate_proj", "mlp.up_proj"),
        mlp_output="mlp.down_proj",
        activation=Activation.SWIGLU,
        residual_dropouts=0,
        eager_softmax_fp32=True,
    ),
    head=HeadOperators(transform=False),
)
