"""Granite (GraniteForCausalLM): the llama layout with four scalar multipliers and, in the
published 3.0 models, a tied head. transformers has no Granite sequence-classification class.

The multipliers scale the embedding output (``embedding_multiplier``), each residual branch
before its add (``residual_multiplier``), the attention scores (``attention_multiplier``, sdpa's
``scale``) and divide the logits (``logits_scaling``). A multiply or divide by a Python scalar
saves nothing for the backward (its gradient is the incoming one times the same scalar), so what
a block, the head and the loss keep is llama's; the scaled copies are transients that never
outlive the next op (checked against the trace in tests/memory/test_accuracy.py). The
multipliers change no shape, so they travel as ``config_extras``, read from config.json with
transformers' defaults and passed back to the config of a preset unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import FAMILY as LLAMA
from freezegen.arch.families.llama import decoder_architecture
from freezegen.arch.family import CAUSAL_LM, UnsupportedConfig
from freezegen.spec.presets import Architecture

# transformers' GraniteConfig defaults.
MULTIPLIERS = {
    "embedding_multiplier": 1.0,
    "residual_multiplier": 1.0,
    "attention_multiplier": 1.0,
    "logits_scaling": 1.0,
}


def _multiplier(cfg: dict[str, Any], name: str) -> float:
    value = cfg.get(name, MULTIPLIERS[name])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}={value!r}")
    return float(value)


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    if cfg.get("mlp_bias"):
        raise UnsupportedConfig("mlp_bias adds biases to the MLP projections")
    arch = decoder_architecture(
        "granite", model_type, cfg, qkv_bias=bool(cfg.get("attention_bias", False))
    )
    extras = tuple((name, _multiplier(cfg, name)) for name in MULTIPLIERS)
    return replace(arch, config_extras=extras)


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {**LLAMA.preset_config(arch), **dict(arch.config_extras)}


FAMILY = replace(
    LLAMA,
    name="granite",
    model_types=("granite",),
    read_config=_read_config,
    preset_config=_preset_config,
    heads=(CAUSAL_LM,),
)
