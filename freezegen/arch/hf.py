"""The Hugging Face config a run builds its model from, as plain data (no transformers import).

The generated script and the traced estimator both build from it, so the estimate measures the
model the script trains.

A preset becomes the keyword arguments of its ``transformers`` config class (the dimensions in
:data:`~freezegen.spec.presets.MODEL_PRESETS`, named as in the published config.json); an
``hf_config`` file is embedded as it is, so the script needs no file to build its model and
``generate --check`` notices when the config changes. Dropout overrides and the settings
training needs (a pad token, the number of labels, a decoder BERT for causal LM) are applied here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from freezegen._io import ReadRefused, read_bytes
from freezegen.arch import (
    MAX_CONFIG_BYTES,
    ArchitectureError,
    UnknownArchitecture,
    architecture_for,
)
from freezegen.arch.families import family_of
from freezegen.arch.source import model_config_file
from freezegen.spec.models import ModelSpec
from freezegen.spec.presets import MODEL_PRESETS, Architecture

_DROPOUT_NAME = re.compile(r"dropout|pdrop")


@dataclass(frozen=True)
class HfModel:
    """What the script needs to build a transformers model: model_type, config kwargs, sizes."""

    model_type: str
    config: dict[str, Any]
    vocab_size: int | None
    """None for an architecture no family knows whose config names no vocab_size."""
    family: str | None
    """None for an architecture no family knows (transformers builds it from the config)."""
    pretrained: str | None = None
    """The Hub id whose weights the script loads (``model.pretrained``), else None."""


def hf_model(model: ModelSpec) -> HfModel:
    """Return the config of a preset, ``hf_config`` or ``pretrained`` model.

    A config whose model_type no family knows is embedded as it is (only ``dropout`` and the
    settings training needs are applied). Raises :class:`~freezegen.arch.ArchitectureError`
    when the config cannot be read or holds an option its family cannot express.
    """
    arch: Architecture | None
    if model.preset is not None:
        arch = MODEL_PRESETS[model.preset]
        config = _preset_config(arch)
        model_type = arch.model_type
    else:
        try:
            arch = architecture_for(model)  # validates the file and its model_type
            assert arch is not None, "a factory model has no Hugging Face config"
            model_type = arch.model_type
        except UnknownArchitecture as exc:
            arch, model_type = None, exc.model_type
        config = _read_config(model_config_file(model))
    family = None if arch is None else family_of(arch)
    config.pop("model_type", None)
    dropout_keys = set() if family is None else set(family.dropout_keys)
    if model.dropout is not None:
        dropout_keys |= {
            k
            for k, v in config.items()
            if _DROPOUT_NAME.search(k) and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        for key in sorted(dropout_keys):
            config[key] = model.dropout
    if config.get("pad_token_id") is None:
        config["pad_token_id"] = 0
    if model.head == "sequence-classification":
        config["num_labels"] = model.num_labels or 2
    elif family is not None:
        config.update(family.causal_lm_config)
    if arch is None:
        vocab = config.get("vocab_size")
        return HfModel(
            model_type, config, vocab if isinstance(vocab, int) else None, None, model.pretrained
        )
    return HfModel(model_type, config, arch.vocab_size, arch.family, model.pretrained)


def _read_config(file: Any) -> dict[str, Any]:
    try:
        data = json.loads(read_bytes(file, MAX_CONFIG_BYTES))
    except ReadRefused as exc:
        raise ArchitectureError(str(exc)) from None
    except ValueError as exc:
        raise ArchitectureError(f"cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise ArchitectureError(f"{file} does not hold a JSON object")
    return data


def _preset_config(arch: Architecture) -> dict[str, Any]:
    family = family_of(arch)
    cfg = family.preset_config(arch)
    cfg["vocab_size"] = arch.vocab_size
    for key in family.dropout_keys:
        cfg[key] = arch.dropout
    return cfg
