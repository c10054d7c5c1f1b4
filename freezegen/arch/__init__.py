"""Architectures freezegen understands without torch: from a preset or a local config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freezegen.spec.models import ModelSpec
from freezegen.spec.presets import MODEL_PRESETS, Architecture

__all__ = [
    "Architecture",
    "ArchitectureError",
    "ModelNotCached",
    "architecture_for",
    "from_hf_config",
]

_FAMILY = {"gpt2": "gpt2", "bert": "bert", "llama": "llama", "mistral": "llama", "qwen2": "llama"}


_MAX_CONFIG = 1024 * 1024


class ArchitectureError(Exception):
    """The model a spec names cannot be described without building it (or is unreadable)."""


class ModelNotCached(ArchitectureError):
    """A ``pretrained`` model whose config the local Hugging Face cache does not hold."""


def architecture_for(model: ModelSpec) -> Architecture | None:
    """Return the architecture of ``model``; None for a ``factory`` model (only tracing knows).

    Raises ArchitectureError when a config.json cannot be read or has an unsupported model_type,
    and its subclass ModelNotCached for a ``pretrained`` model missing from the cache.
    """
    from freezegen.arch.source import model_config_file
    from freezegen.hub import NotCached

    if model.preset is not None:
        return MODEL_PRESETS[model.preset]
    try:
        config = model_config_file(model)
    except NotCached as exc:
        raise ModelNotCached(str(exc)) from None
    return None if config is None else from_hf_config(config)


def from_hf_config(path: Path) -> Architecture:
    """Read a Hugging Face ``config.json`` (or a folder holding one) into an Architecture."""
    file = path
    try:
        if path.is_dir():
            file = path / "config.json"
        if file.exists() and not file.is_file():
            raise ArchitectureError(f"{file} is not a regular file")
        with open(file, "rb") as fh:
            raw = fh.read(_MAX_CONFIG + 1)  # bounded: hf_config could name /dev/zero
    except OSError as exc:
        raise ArchitectureError(f"cannot read {file}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_CONFIG:
        raise ArchitectureError(f"{file} is over 1 MiB; is it really a config.json?")
    try:
        cfg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchitectureError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise ArchitectureError(f"{file} does not hold a JSON object")
    model_type = cfg.get("model_type")
    family = _FAMILY.get(model_type) if isinstance(model_type, str) else None
    if family is None:
        known = ", ".join(sorted(_FAMILY))
        raise ArchitectureError(
            f"{file}: model_type {model_type!r} is not one freezegen models analytically "
            f"({known}); use a factory and --trace"
        )
    reason = _unsupported(family, model_type, cfg)
    if reason is not None:
        raise ArchitectureError(
            f"{file}: {reason}, which freezegen does not model analytically; "
            "use a factory and --trace"
        )
    try:
        return _build(family, model_type, cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchitectureError(f"{file}: missing or invalid field {exc}") from None


def _int(cfg: dict[str, Any], *names: str, default: int | None = None) -> int:
    for name in names:
        value = cfg.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}={value!r}")
            return value
    if default is None:
        raise KeyError(names[0])
    return default


def _unsupported(family: str, model_type: str, cfg: dict[str, Any]) -> str | None:
    """Name a config option that changes the parameters in a way Architecture cannot express."""
    if cfg.get("add_cross_attention"):
        return "add_cross_attention adds cross-attention blocks"
    if family != "llama":
        return None
    if model_type == "llama" and cfg.get("mlp_bias"):
        return "mlp_bias adds biases to the MLP projections"
    head_dim, hidden, heads = (
        cfg.get(k) for k in ("head_dim", "hidden_size", "num_attention_heads")
    )
    if (
        head_dim is not None
        and isinstance(hidden, int)
        and isinstance(heads, int)
        and heads > 0
        and head_dim != hidden // heads
    ):
        return f"head_dim={head_dim!r} is not hidden_size // num_attention_heads"
    return None


def _build(family: str, model_type: str, cfg: dict[str, Any]) -> Architecture:
    if family == "gpt2":
        hidden = _int(cfg, "n_embd", "hidden_size")
        return Architecture(
            family,
            model_type,
            _int(cfg, "n_layer", "num_hidden_layers"),
            hidden,
            _int(cfg, "n_head", "num_attention_heads"),
            _int(cfg, "n_inner", default=4 * hidden),
            _int(cfg, "vocab_size"),
            _int(cfg, "n_positions", default=1024),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
            dropout=float(cfg.get("resid_pdrop", 0.1)),
        )
    if family == "bert":
        return Architecture(
            family,
            model_type,
            _int(cfg, "num_hidden_layers"),
            _int(cfg, "hidden_size"),
            _int(cfg, "num_attention_heads"),
            _int(cfg, "intermediate_size"),
            _int(cfg, "vocab_size"),
            _int(cfg, "max_position_embeddings", default=512),
            type_vocab_size=_int(cfg, "type_vocab_size", default=2),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
            dropout=float(cfg.get("hidden_dropout_prob", 0.1)),
        )
    heads = _int(cfg, "num_attention_heads")
    return Architecture(
        family,
        model_type,
        _int(cfg, "num_hidden_layers"),
        _int(cfg, "hidden_size"),
        heads,
        _int(cfg, "intermediate_size"),
        _int(cfg, "vocab_size"),
        _int(cfg, "max_position_embeddings", default=2048),
        num_kv_heads=_int(cfg, "num_key_value_heads", default=heads),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        # qwen2 always has q/k/v biases; only llama reads attention_bias (mistral ignores it).
        qkv_bias=model_type == "qwen2"
        or (model_type == "llama" and bool(cfg.get("attention_bias", False))),
        dropout=float(cfg.get("attention_dropout", 0.0)),
    )
