"""Traced estimates cached by spec content, so ``lint --trace`` in a hook pays for a trace once.

The key is what decides the trace: freezegen's version, the validated spec (paths resolved) and
the bytes of the model's config.json (a local hf_config, or a pretrained model's cached one). A
factory's source is not part of the key: after changing the factory, clear the cache
(``FREEZEGEN_CACHE_DIR`` or ``~/.cache/freezegen``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from freezegen._io import WriteRefused, write_file
from freezegen._version import __version__
from freezegen.arch.source import model_config_file
from freezegen.hub import NotCached
from freezegen.memory.estimate import Breakdown, EstimateError, MemoryEstimate
from freezegen.spec.models import Spec


def cache_dir() -> Path:
    """Where traced estimates are kept: $FREEZEGEN_CACHE_DIR, else the XDG cache folder."""
    explicit = os.environ.get("FREEZEGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "freezegen" / "traced"


def cache_key(spec: Spec) -> str:
    digest = hashlib.sha256()
    digest.update(f"freezegen {__version__}\n".encode())
    digest.update(spec.model_dump_json().encode())
    with contextlib.suppress(OSError, NotCached):  # unreadable: the trace itself will say so
        file = model_config_file(spec.model)
        if file is not None:
            digest.update(file.read_bytes()[: 1024 * 1024])
    return digest.hexdigest()


def cached_traced(spec: Spec) -> MemoryEstimate:
    """Return the traced estimate of ``spec``, from the cache when the same spec was traced.

    Raises EstimateError as estimate_traced does. A corrupt or unwritable cache is ignored.
    """
    path = cache_dir() / f"{cache_key(spec)}.json"
    try:
        return from_json_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from freezegen.memory.traced import estimate_traced

    try:
        result = estimate_traced(spec)
    except ImportError as exc:
        raise EstimateError(f"--trace needs torch and transformers: {exc}") from None
    with contextlib.suppress(WriteRefused):  # a read-only cache only costs the next run a trace
        write_file(path, json.dumps(result.to_json_dict()))
    return result


def from_json_dict(data: dict[str, object]) -> MemoryEstimate:
    """Rebuild a MemoryEstimate from its JSON form (the contract, docs/architecture.md)."""
    breakdown = data["breakdown"]
    if not isinstance(breakdown, dict):
        raise TypeError("breakdown must be an object")
    return MemoryEstimate(
        method=str(data["method"]),
        peak_bytes=int(data["peak_bytes"]),  # type: ignore[arg-type]
        budget_bytes=int(data["budget_bytes"]),  # type: ignore[arg-type]
        overhead_bytes=int(data["overhead_bytes"]),  # type: ignore[arg-type]
        breakdown=Breakdown(**{k: int(v) for k, v in breakdown.items()}),
        trainable_parameters=int(data["trainable_parameters"]),  # type: ignore[arg-type]
        total_parameters=int(data["total_parameters"]),  # type: ignore[arg-type]
        per_device=bool(data["per_device"]),
    )
