"""Architectures freezegen understands without torch: from a preset or a local config.json."""

from __future__ import annotations

import json
from pathlib import Path

from freezegen._io import ReadRefused, TooLarge, read_bytes
from freezegen.arch.families import family_for_model_type, family_of, known_model_types
from freezegen.arch.family import UnsupportedConfig
from freezegen.spec.models import ModelSpec
from freezegen.spec.presets import MODEL_PRESETS, Architecture

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ModelNotCached",
    "UnknownArchitecture",
    "architecture_for",
    "from_hf_config",
]

MAX_CONFIG_BYTES = 1024 * 1024
"""The largest config.json read (1 MiB; a real one is a few KiB)."""


class ArchitectureError(Exception):
    """The model a spec names cannot be described without building it (or is unreadable)."""


class UnsupportedHead(ArchitectureError):
    """A head (``model.head``) the model's family has no transformers class for."""


class ModelNotCached(ArchitectureError):
    """A ``pretrained`` model whose config the local Hugging Face cache does not hold."""


class UnknownArchitecture(ArchitectureError):
    """A readable config.json whose ``model_type`` no family knows: transformers may build it
    (the traced estimate measures it, the generated script trains it), freezegen cannot model
    it analytically."""

    def __init__(self, message: str, model_type: str) -> None:
        super().__init__(message)
        self.model_type = model_type


def architecture_for(model: ModelSpec) -> Architecture | None:
    """Return the architecture of ``model``; None for a ``factory`` model (only tracing knows).

    Raises ArchitectureError when a config.json cannot be read or holds an option its family
    cannot express, its subclass UnknownArchitecture when no family knows its model_type,
    UnsupportedHead when the family has no class for the spec's head, and ModelNotCached for a
    ``pretrained`` model missing from the cache.
    """
    from freezegen.arch.source import model_config_file
    from freezegen.hub import NotCached

    if model.preset is not None:
        arch = MODEL_PRESETS[model.preset]
    else:
        try:
            config = model_config_file(model)
        except NotCached as exc:
            raise ModelNotCached(str(exc)) from None
        if config is None:
            return None
        arch = from_hf_config(config)
    family = family_of(arch)
    if model.head not in family.heads:
        raise UnsupportedHead(
            f"transformers has no {model.head} head for {family.name} models "
            f"(heads: {', '.join(family.heads)})"
        )
    return arch


def from_hf_config(path: Path) -> Architecture:
    """Read a Hugging Face ``config.json`` (or a folder holding one) into an Architecture."""
    file = path / "config.json" if path.is_dir() else path
    try:  # bounded and never blocking: hf_config could name /dev/zero or a FIFO
        raw = read_bytes(file, MAX_CONFIG_BYTES)
    except TooLarge:
        raise ArchitectureError(f"{file} is over 1 MiB; is it really a config.json?") from None
    except ReadRefused as exc:
        raise ArchitectureError(str(exc)) from None
    try:
        cfg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchitectureError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ArchitectureError(f"{file} does not hold a JSON object")
    model_type = cfg.get("model_type")
    family = family_for_model_type(model_type) if isinstance(model_type, str) else None
    if family is None:
        known = ", ".join(known_model_types())
        message = (
            f"{file}: model_type {model_type!r} is not one freezegen models analytically ({known})"
        )
        if not isinstance(model_type, str):
            raise ArchitectureError(f"{message}; use a factory and --trace")
        raise UnknownArchitecture(message, model_type)
    try:
        if cfg.get("add_cross_attention"):
            raise UnsupportedConfig("add_cross_attention adds cross-attention blocks")
        return family.read_config(model_type, cfg)
    except UnsupportedConfig as exc:
        raise ArchitectureError(
            f"{file}: {exc}, which freezegen does not model analytically; use a factory and --trace"
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchitectureError(f"{file}: missing or invalid field {exc}") from None
