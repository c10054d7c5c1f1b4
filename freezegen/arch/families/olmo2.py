"""OLMo 2 (Olmo2ForCausalLM / Olmo2ForSequenceClassification): the llama layout with its
norms moved: an RMSNorm over the whole query and key projections (``q_norm`` / ``k_norm``,
before the heads are split), and the block's norms after the attention and the MLP
(``post_attention_layernorm``, ``post_feedforward_layernorm``) instead of before them, so
each sublayer reads the residual stream itself. Its RMSNorm multiplies the weight in fp32 and
casts after."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import FAMILY as LLAMA
from freezegen.arch.families.llama import (
    QK_NORMS,
    decoder_architecture,
    decoder_parameters,
    decoder_preset_config,
)
from freezegen.arch.family import Norm
from freezegen.arch.params import Param
from freezegen.spec.presets import Architecture

_POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm")


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    return decoder_architecture(
        "olmo2", model_type, cfg, qkv_bias=bool(cfg.get("attention_bias", False)), head_dim=0
    )


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {**decoder_preset_config(arch), "attention_bias": arch.qkv_bias}


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    # attention_bias puts a bias on all four projections, as in llama.
    return decoder_parameters(
        a,
        head,
        labels,
        tied,
        output_bias=a.qkv_bias,
        qk_norms=(a.attention_width, a.kv_heads * a.head_dim),
        layer_norms=_POST_NORMS,
    )


FAMILY = replace(
    LLAMA,
    name="olmo2",
    model_types=("olmo2",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    modules={**LLAMA.modules, "norm": (*_POST_NORMS, "norm", *QK_NORMS)},
    block=replace(
        LLAMA.block,
        norm=Norm.RMS_NORM_FP32,
        attention_norm=None,
        mlp_norm=None,
        qk_norms=QK_NORMS,
        output_norms=_POST_NORMS,
    ),
)
