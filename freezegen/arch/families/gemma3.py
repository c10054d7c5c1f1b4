"""Gemma 3, text only (Gemma3ForCausalLM / Gemma3TextForSequenceClassification; model_type
``gemma3_text``): the llama layout with gemma's own pieces. head_dim is the config's (256 by
default), not hidden_size // num_attention_heads; each block has four norms (before and after
the attention, before and after the MLP) and per-head norms on the queries and keys, all
Gemma RMSNorms (the normalised x times 1 + weight, in fp32, cast after); the MLP is GeGLU
with tanh-GELU; the embeddings are scaled by sqrt(hidden_size) (a multiply by a scalar, which
saves nothing per token); the head is tied.

Sliding-window layers (every layer but each sixth) attend to the last ``sliding_window``
positions. For a sequence shorter than the window transformers runs them exactly like the
full-attention layers (sdpa with is_causal, no mask), which is what the analytic estimator
models; a longer sequence builds a sliding-window mask it does not count. Gemma 2 is not this
family: its attention soft-capping has no sdpa kernel (transformers refuses sdpa for it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import FAMILY as LLAMA
from freezegen.arch.families.llama import (
    QK_NORMS,
    decoder_architecture,
    decoder_parameters,
    head_dim_preset_config,
)
from freezegen.arch.family import Activation, Norm, UnsupportedConfig, config_int
from freezegen.arch.params import Param
from freezegen.spec.presets import Architecture

# Gemma3TextConfig's defaults for what a config.json may leave out.
_DEFAULT_HEAD_DIM = 256
_DEFAULT_SLIDING_WINDOW = 4096
_LAYER_NORMS = (
    "input_layernorm",
    "post_attention_layernorm",
    "pre_feedforward_layernorm",
    "post_feedforward_layernorm",
)


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    for key, what in (
        ("attn_logit_softcapping", "soft-caps the attention scores (eager only)"),
        ("final_logit_softcapping", "soft-caps the logits (tanh over batch x seq x vocab)"),
        ("use_bidirectional_attention", "makes the attention bidirectional"),
    ):
        if cfg.get(key):
            raise UnsupportedConfig(f"{key} {what}")
    arch = decoder_architecture(
        "gemma3",
        model_type,
        {"tie_word_embeddings": True, **cfg},
        qkv_bias=bool(cfg.get("attention_bias", False)),
        head_dim=_DEFAULT_HEAD_DIM,
    )
    window = config_int(cfg, "sliding_window", default=_DEFAULT_SLIDING_WINDOW)
    return replace(arch, sliding_window=window)


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {
        **head_dim_preset_config(arch),
        "attention_bias": arch.qkv_bias,
        "sliding_window": arch.sliding_window or _DEFAULT_SLIDING_WINDOW,
    }


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    # attention_bias puts a bias on all four projections, as in llama.
    return decoder_parameters(
        a,
        head,
        labels,
        tied,
        output_bias=a.qkv_bias,
        qk_norms=(a.head_dim, a.head_dim),
        layer_norms=_LAYER_NORMS,
    )


FAMILY = replace(
    LLAMA,
    name="gemma3",
    model_types=("gemma3_text",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    modules={**LLAMA.modules, "norm": (*_LAYER_NORMS, "norm", *QK_NORMS)},
    block=replace(
        LLAMA.block,
        norm=Norm.RMS_NORM_FP32,
        attention_norm="input_layernorm",
        mlp_norm="pre_feedforward_layernorm",
        qk_norms=QK_NORMS,
        qk_norm_per_head=True,
        output_norms=("post_attention_layernorm", "post_feedforward_layernorm"),
        activation=Activation.GEGLU,
    ),
    attention_masks=2,
)
