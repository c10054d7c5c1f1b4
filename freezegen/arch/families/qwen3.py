"""Qwen3: the llama layout with its own head_dim (128 unless the config says otherwise, not
hidden_size // num_attention_heads), an RMSNorm on each head of the queries and of the keys
(``q_norm`` / ``k_norm``, before the rotary embedding) and no attention biases by default."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import (
    FAMILY as LLAMA,
)
from freezegen.arch.families.llama import (
    QK_NORMS,
    decoder_architecture,
    decoder_parameters,
    head_dim_preset_config,
)
from freezegen.arch.family import UnsupportedConfig
from freezegen.arch.params import Param
from freezegen.spec.presets import Architecture

# Qwen3Config's head_dim when a config.json does not set one.
_DEFAULT_HEAD_DIM = 128


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    if cfg.get("use_sliding_window") or "sliding_attention" in (cfg.get("layer_types") or ()):
        raise UnsupportedConfig("use_sliding_window builds a sliding-window mask in its layers")
    return decoder_architecture(
        "qwen3",
        model_type,
        cfg,
        qkv_bias=bool(cfg.get("attention_bias", False)),
        head_dim=_DEFAULT_HEAD_DIM,
    )


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {**head_dim_preset_config(arch), "attention_bias": arch.qkv_bias}


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    # attention_bias puts a bias on all four projections, as in llama.
    return decoder_parameters(
        a, head, labels, tied, output_bias=a.qkv_bias, qk_norms=(a.head_dim, a.head_dim)
    )


FAMILY = replace(
    LLAMA,
    name="qwen3",
    model_types=("qwen3",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    modules={**LLAMA.modules, "norm": (*LLAMA.modules["norm"], *QK_NORMS)},
    block=replace(LLAMA.block, qk_norms=QK_NORMS, qk_norm_per_head=True),
)
