"""GPT-2 (GPT2LMHeadModel / GPT2ForSequenceClassification): learned positions, pre-LN blocks,
Conv1D projections, tanh-GELU, residual dropout."""

from __future__ import annotations

from typing import Any

from freezegen.arch.family import (
    SEQUENCE_CLASSIFICATION,
    Activation,
    BlockOperators,
    Family,
    HeadOperators,
    Norm,
    Positions,
    config_int,
)
from freezegen.arch.params import ATTENTION, EMBEDDINGS, HEAD, MLP, Param, norm
from freezegen.spec.presets import Architecture


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    hidden = config_int(cfg, "n_embd", "hidden_size")
    return Architecture(
        "gpt2",
        model_type,
        config_int(cfg, "n_layer", "num_hidden_layers"),
        hidden,
        config_int(cfg, "n_head", "num_attention_heads"),
        config_int(cfg, "n_inner", default=4 * hidden),
        config_int(cfg, "vocab_size"),
        config_int(cfg, "n_positions", default=1024),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        dropout=float(cfg.get("resid_pdrop", 0.1)),
    )


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {
        "n_layer": arch.num_layers,
        "n_embd": arch.hidden_size,
        "n_head": arch.num_heads,
        "n_inner": arch.intermediate_size,
        "n_positions": arch.max_positions,
    }


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    h, f = a.hidden_size, a.intermediate_size
    out = [
        Param("transformer.wte.weight", (a.vocab_size, h), EMBEDDINGS),
        Param("transformer.wpe.weight", (a.max_positions, h), EMBEDDINGS),
    ]
    for i in range(a.num_layers):
        p = f"transformer.h.{i}"
        # GPT-2 uses Conv1D: weights are stored (in, out).
        out += norm(f"{p}.ln_1", h, i)
        out += [
            Param(f"{p}.attn.c_attn.weight", (h, 3 * h), ATTENTION, i),
            Param(f"{p}.attn.c_attn.bias", (3 * h,), ATTENTION, i),
            Param(f"{p}.attn.c_proj.weight", (h, h), ATTENTION, i),
            Param(f"{p}.attn.c_proj.bias", (h,), ATTENTION, i),
        ]
        out += norm(f"{p}.ln_2", h, i)
        out += [
            Param(f"{p}.mlp.c_fc.weight", (h, f), MLP, i),
            Param(f"{p}.mlp.c_fc.bias", (f,), MLP, i),
            Param(f"{p}.mlp.c_proj.weight", (f, h), MLP, i),
            Param(f"{p}.mlp.c_proj.bias", (h,), MLP, i),
        ]
    out += norm("transformer.ln_f", h, None)
    if head == SEQUENCE_CLASSIFICATION:
        out.append(Param("score.weight", (labels, h), HEAD))
    elif not tied:
        out.append(Param("lm_head.weight", (a.vocab_size, h), HEAD))
    return out


FAMILY = Family(
    name="gpt2",
    model_types=("gpt2",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    dropout_keys=("resid_pdrop", "embd_pdrop", "attn_pdrop"),
    modules={
        "embeddings": ("wte", "wpe"),
        "attention": ("attn",),
        "mlp": ("mlp",),
        "norm": ("ln_1", "ln_2", "ln_f"),
        "head": ("lm_head", "score"),
    },
    positions=Positions.LEARNED,
    block=BlockOperators(
        norm=Norm.LAYER_NORM,
        attention_norm="ln_1",
        mlp_norm="ln_2",
        attention_inputs=("attn.c_attn",),
        out_projection="attn.c_proj",
        mlp_inputs=("mlp.c_fc",),
        mlp_output="mlp.c_proj",
        activation=Activation.TANH_GELU,
        residual_dropouts=2,
        eager_softmax_fp32=False,
    ),
    head=HeadOperators(transform=False),
    conv1d_blocks=True,
)
