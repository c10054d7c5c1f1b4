"""Phi-3 (Phi3ForCausalLM / Phi3ForSequenceClassification): the llama block with fused
projections (``qkv_proj`` for q, k and v; ``gate_up_proj`` for the gate and the up projection,
split by chunk) and a dropout on each residual branch (``resid_pdrop``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import FAMILY as LLAMA
from freezegen.arch.families.llama import (
    decoder_architecture,
    decoder_preset_config,
    decoder_tail,
)
from freezegen.arch.family import UnsupportedConfig
from freezegen.arch.params import ATTENTION, EMBEDDINGS, MLP, Param, linear, norm
from freezegen.spec.presets import Architecture

# Config keys of the dropouts Phi3 builds, the attention probabilities' and the residual
# branches'; embd_pdrop is read by no module in transformers 5 (set with the others so that a
# model.dropout override leaves no key behind).
_DROPOUTS = ("resid_pdrop", "embd_pdrop", "attention_dropout")


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    rates = {key: float(cfg.get(key, 0.0)) for key in ("resid_pdrop", "attention_dropout")}
    if len(set(rates.values())) > 1:
        raise UnsupportedConfig(
            "resid_pdrop differs from attention_dropout (freezegen models one dropout rate)"
        )
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if isinstance(rope, dict) and rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise UnsupportedConfig("partial_rotary_factor rotates part of each head")
    arch = decoder_architecture("phi3", model_type, cfg, qkv_bias=False, head_dim=0)
    return replace(arch, dropout=rates["resid_pdrop"])


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    h, f, q = a.hidden_size, a.intermediate_size, a.attention_width
    out = [Param("model.embed_tokens.weight", (a.vocab_size, h), EMBEDDINGS)]
    for i in range(a.num_layers):
        p = f"model.layers.{i}"
        # Phi3Attention registers o_proj before qkv_proj.
        out += linear(f"{p}.self_attn.o_proj", h, q, ATTENTION, i, bias=False)
        qkv = q + 2 * a.kv_heads * a.head_dim
        out += linear(f"{p}.self_attn.qkv_proj", qkv, h, ATTENTION, i, bias=False)
        out += linear(f"{p}.mlp.gate_up_proj", 2 * f, h, MLP, i, bias=False)
        out += linear(f"{p}.mlp.down_proj", h, f, MLP, i, bias=False)
        out += norm(f"{p}.input_layernorm", h, i, bias=False)
        out += norm(f"{p}.post_attention_layernorm", h, i, bias=False)
    return out + decoder_tail(a, head, labels, tied)


FAMILY = replace(
    LLAMA,
    name="phi3",
    model_types=("phi3",),
    read_config=_read_config,
    preset_config=decoder_preset_config,
    parameters=_parameters,
    dropout_keys=_DROPOUTS,
    # gate_up_proj's output is one tensor: chunk's halves are views of it, which silu and the
    # product keep alive together (2f), with silu's output (f): SwiGLU's 3f.
    block=replace(
        LLAMA.block,
        attention_inputs=("self_attn.qkv_proj",),
        fused_qkv=True,
        mlp_inputs=("mlp.gate_up_proj",),
        residual_dropouts=2,
    ),
)
