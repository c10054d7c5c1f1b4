"""BERT (BertLMHeadModel as a decoder / BertForSequenceClassification): learned positions and
token types, post-LN blocks, exact GELU, the LM head's transform or the pooler."""

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
from freezegen.arch.params import ATTENTION, EMBEDDINGS, HEAD, MLP, Param, linear, norm
from freezegen.spec.presets import Architecture


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    return Architecture(
        "bert",
        model_type,
        config_int(cfg, "num_hidden_layers"),
        config_int(cfg, "hidden_size"),
        config_int(cfg, "num_attention_heads"),
        config_int(cfg, "intermediate_size"),
        config_int(cfg, "vocab_size"),
        config_int(cfg, "max_position_embeddings", default=512),
        type_vocab_size=config_int(cfg, "type_vocab_size", default=2),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        dropout=float(cfg.get("hidden_dropout_prob", 0.1)),
    )


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {
        "num_hidden_layers": arch.num_layers,
        "hidden_size": arch.hidden_size,
        "num_attention_heads": arch.num_heads,
        "intermediate_size": arch.intermediate_size,
        "max_position_embeddings": arch.max_positions,
        "type_vocab_size": arch.type_vocab_size,
    }


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    h, f = a.hidden_size, a.intermediate_size
    e = "bert.embeddings"
    out = [
        Param(f"{e}.word_embeddings.weight", (a.vocab_size, h), EMBEDDINGS),
        Param(f"{e}.position_embeddings.weight", (a.max_positions, h), EMBEDDINGS),
        Param(f"{e}.token_type_embeddings.weight", (a.type_vocab_size, h), EMBEDDINGS),
        Param(f"{e}.LayerNorm.weight", (h,), EMBEDDINGS),
        Param(f"{e}.LayerNorm.bias", (h,), EMBEDDINGS),
    ]
    for i in range(a.num_layers):
        p = f"bert.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            out += linear(f"{p}.attention.self.{proj}", h, h, ATTENTION, i)
        out += linear(f"{p}.attention.output.dense", h, h, ATTENTION, i)
        out += norm(f"{p}.attention.output.LayerNorm", h, i)
        out += linear(f"{p}.intermediate.dense", f, h, MLP, i)
        out += linear(f"{p}.output.dense", h, f, MLP, i)
        out += norm(f"{p}.output.LayerNorm", h, i)
    if head == SEQUENCE_CLASSIFICATION:
        out += linear("bert.pooler.dense", h, h, HEAD, None)
        out += linear("classifier", labels, h, HEAD, None)
    else:
        # A module's own parameters come before its children's: the output bias is first.
        t = "cls.predictions"
        out.append(Param(f"{t}.bias", (a.vocab_size,), HEAD))
        out += linear(f"{t}.transform.dense", h, h, HEAD, None)
        out += [
            Param(f"{t}.transform.LayerNorm.weight", (h,), HEAD),
            Param(f"{t}.transform.LayerNorm.bias", (h,), HEAD),
        ]
        if not tied:
            # Untied (transformers 5): the decoder keeps its own weight and bias.
            out += linear(f"{t}.decoder", a.vocab_size, h, HEAD, None)
    return out


FAMILY = Family(
    name="bert",
    model_types=("bert",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    dropout_keys=("hidden_dropout_prob", "attention_probs_dropout_prob"),
    modules={
        "embeddings": ("embeddings",),
        "attention": ("attention.self", "attention.output.dense"),
        "mlp": ("intermediate", "output.dense"),
        "norm": ("attention.output.LayerNorm", "output.LayerNorm"),
        "head": ("cls", "pooler", "classifier"),
    },
    positions=Positions.LEARNED,
    # Post-LN: the attention reads the block input (the previous block's LayerNorm output).
    block=BlockOperators(
        norm=Norm.LAYER_NORM,
        attention_norm="attention.output.LayerNorm",
        mlp_norm="output.LayerNorm",
        attention_inputs=(
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
        ),
        out_projection="attention.output.dense",
        mlp_inputs=("intermediate.dense",),
        mlp_output="output.dense",
        activation=Activation.GELU,
        residual_dropouts=2,
        eager_softmax_fp32=False,
        post_norm=True,
    ),
    head=HeadOperators(transform=True, embedding_norm=True),
    causal_lm_config={"is_decoder": True},
    packed_documents=False,
    output_head="cls.predictions.decoder",
)
