"""metrics.jsonl records written by hand, field for field as docs/metrics.md gives the schema
(interface 3 of issue 12), for the tests of its reader and of ``freezegen report``.

Each function returns one record as a dict; keyword arguments replace fields. ``cpu_run``
and ``cuda_run`` are whole runs as a training script would log them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

GIB = 1 << 30


def run(step: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "run",
        "schema": 1,
        "step": step,
        "time": 1_700_000_000.0 + step,
        "max_steps": 40,
        "device": "cpu",
        "world_size": 1,
        "predicted_peak_bytes": 3 * GIB,
        "trainable_parameters": 1_000,
        "total_parameters": 4_000,
        **fields,
    }


def train(step: int, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "train",
        "step": step,
        "time": 1_700_000_000.0 + step,
        "loss": 4.0 * math.exp(-step / 20),
        "lr": 1e-3,
        "grad_norm": 1.5,
        "tokens_per_s": 1_000.0 + step,
        "max_allocated_bytes": None,
        "reserved_bytes": None,
        **fields,
    }


def evaluation(step: int, val_loss: float, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "eval",
        "step": step,
        "time": 1_700_000_000.0 + step,
        "val_loss": val_loss,
        "val_ppl": math.exp(val_loss),
        "val_tokens": 512,
        **fields,
    }


def thaw(step: int, entry: int = 0, tensors: int = 9) -> dict[str, Any]:
    return {
        "kind": "thaw",
        "step": step,
        "time": 1_700_000_000.0 + step,
        "entry": entry,
        "tensors": tensors,
    }


def memory(step: int, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "memory",
        "step": step,
        "time": 1_700_000_000.0 + step,
        "max_allocated_bytes": None,
        "predicted_peak_bytes": 3 * GIB,
        "reserved_bytes": None,
        "fragmentation_bytes": None,
        "alloc_retries": None,
        "cuda_malloc_count": None,
        **fields,
    }


def cpu_run(steps: int = 20) -> list[dict[str, Any]]:
    """A CPU run: every step trained, evaluated every 5, a thaw at step 10, memory nulls."""
    records = [run()]
    for step in range(1, steps + 1):
        records.append(train(step))
        if step % 5 == 0:
            records.append(evaluation(step, 3.0 - step / 10))
        if step == 10:
            records.append(thaw(step))
    records.append(memory(steps))
    return records


def cuda_run(steps: int = 20) -> list[dict[str, Any]]:
    """The same run on a GPU: the allocator's figures filled in."""
    records = [run(device="cuda")]
    for step in range(1, steps + 1):
        records.append(
            train(step, max_allocated_bytes=int(2.5 * GIB) + step, reserved_bytes=int(2.9 * GIB))
        )
        if step % 5 == 0:
            records.append(evaluation(step, 3.0 - step / 10))
    records.append(
        memory(
            steps,
            max_allocated_bytes=int(2.6 * GIB),
            reserved_bytes=int(2.9 * GIB),
            fragmentation_bytes=int(0.3 * GIB),
            alloc_retries=0,
            cuda_malloc_count=57,
        )
    )
    return records


def write_metrics(path: Path, records: Iterable[dict[str, Any] | str]) -> Path:
    """Write ``records`` (dicts, or raw lines as is) one a line into ``path``; return it."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
