"""Mixtral (MixtralForCausalLM / MixtralForSequenceClassification): the mistral layout whose MLP
is a sparse mixture of experts.

Each block's ``mlp`` holds a router (``mlp.gate``, a bias-free linear from hidden to
``num_local_experts`` logits) and the experts as two fused 3-D parameters (transformers 5):
``mlp.experts.gate_up_proj`` (experts, 2 x intermediate, hidden) and ``mlp.experts.down_proj``
(experts, hidden, intermediate). A token's router softmax picks its ``num_experts_per_tok``
experts (top-k, weights renormalised to sum to one); each expert runs SwiGLU on the tokens
routed to it and the weighted outputs are summed back per token.

Routing, as the estimators see it: transformers' default experts implementation
(``grouped_mm``) sorts the tokens x top-k routed copies by expert and runs every expert in one
grouped matmul, so every tensor it keeps has tokens x top-k rows however the router spreads
the tokens over the experts; the analytic model needs no assumption about the spread (evenly,
each expert would see tokens x top-k / experts rows) and the trace runs that implementation
itself, whose shapes do not depend on the routing (:func:`~freezegen.memory.analytic.
operators.routed_mlp`).

The router's auxiliary load-balancing loss is computed by transformers only with
``output_router_logits``, which is off in every published Mixtral config; freezegen refuses a
config that turns it on (the logits kept for it are not modelled) and the generated script
trains on the language-model loss alone. Router jitter noise is refused likewise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from freezegen.arch.families.llama import FAMILY as LLAMA
from freezegen.arch.families.llama import (
    decoder_architecture,
    decoder_parameters,
    decoder_preset_config,
)
from freezegen.arch.family import UnsupportedConfig, config_int
from freezegen.arch.params import MLP, Param, linear
from freezegen.spec.presets import Architecture


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    if cfg.get("output_router_logits"):
        raise UnsupportedConfig("output_router_logits keeps every block's router logits")
    if cfg.get("router_jitter_noise"):
        raise UnsupportedConfig("router_jitter_noise multiplies the MoE input by noise")
    experts = config_int(cfg, "num_local_experts", default=8)
    top_k = config_int(cfg, "num_experts_per_tok", default=2)
    if not 0 < top_k <= experts:
        raise ValueError(f"num_experts_per_tok={top_k} of num_local_experts={experts}")
    arch = decoder_architecture("mixtral", model_type, cfg, qkv_bias=False)
    return replace(arch, num_experts=experts, experts_per_token=top_k)


def _preset_config(arch: Architecture) -> dict[str, Any]:
    return {
        **decoder_preset_config(arch),
        "num_local_experts": arch.num_experts,
        "num_experts_per_tok": arch.experts_per_token,
    }


def _experts(prefix: str, a: Architecture, block: int) -> list[Param]:
    """One block's sparse MLP: the router, then the experts' fused gate/up and down weights."""
    h, f, e = a.hidden_size, a.intermediate_size, a.num_experts
    return [
        *linear(f"{prefix}.mlp.gate", e, h, MLP, block, bias=False),
        Param(f"{prefix}.mlp.experts.gate_up_proj", (e, 2 * f, h), MLP, block),
        Param(f"{prefix}.mlp.experts.down_proj", (e, h, f), MLP, block),
    ]


def _parameters(a: Architecture, head: str, labels: int, tied: bool) -> list[Param]:
    return decoder_parameters(a, head, labels, tied, output_bias=False, mlp=_experts)


FAMILY = replace(
    LLAMA,
    name="mixtral",
    model_types=("mixtral",),
    read_config=_read_config,
    preset_config=_preset_config,
    parameters=_parameters,
    block=replace(
        LLAMA.block,
        mlp_inputs=("mlp.experts.gate_up_proj",),
        mlp_output="mlp.experts.down_proj",
        router="mlp.gate",
    ),
)
