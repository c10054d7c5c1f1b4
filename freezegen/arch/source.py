"""Where a spec's Hugging Face config.json comes from: a local file, or the Hub cache."""

from __future__ import annotations

from pathlib import Path

from freezegen.hub import find_cached
from freezegen.spec.models import ModelSpec

__all__ = ["model_config_file"]


def model_config_file(model: ModelSpec) -> Path | None:
    """Return the config.json that describes ``model``: its ``hf_config`` (a file, or the folder
    holding one) or its ``pretrained`` model's cached config; None for a preset or a factory.

    Reads only the file system. Raises :class:`freezegen.hub.NotCached` for a ``pretrained``
    model the local Hugging Face cache does not hold.
    """
    if model.pretrained is not None:
        return find_cached(model.pretrained).config
    if model.hf_config is None:
        return None
    path = model.hf_config
    try:
        return path / "config.json" if path.is_dir() else path
    except OSError:  # e.g. a name too long: reading it says so, located, like any bad path
        return path
