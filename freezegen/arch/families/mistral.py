"""Mistral: the llama layout without attention biases (it ignores ``attention_bias``)."""

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
    return decoder_architecture("mistral", model_type, cfg, qkv_bias=False)


FAMILY = replace(
    LLAMA,
    name="mistral",
    model_types=("mistral",),
    read_config=_read_config,
    preset_config=decoder_preset_config,
    parameters=partial(decoder_parameters, output_bias=False),
)
