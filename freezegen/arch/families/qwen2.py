"""Qwen2: the llama layout with biases on q, k and v (always) and none on the output
projection."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from freezegen.arch.families.llama import (
    FAMILY as LLAMA,
)
from freezegen.arch.families.llama import (
    decoder_architecture,
    decoder_parameters,
    decoder_preset_config,
)
from freezegen.spec.presets import Architecture


def _read_config(model_type: str, cfg: dict[str, Any]) -> Architecture:
    return decoder_architecture("qwen2", model_type, cfg, qkv_bias=True)


FAMILY = replace(
    LLAMA,
    name="qwen2",
    model_types=("qwen2",),
    read_config=_read_config,
    preset_config=decoder_preset_config,
    parameters=partial(decoder_parameters, output_bias=False),
)
