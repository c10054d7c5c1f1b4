"""``hardware: {gpu: auto}``: the GPU of the machine freezegen runs on, without importing torch.

``nvidia-smi`` (which every NVIDIA driver installs) says the first GPU's name, memory and
compute capability; a card in freezegen's table (``A100-SXM4-80GB`` is the A100-80GB) is
budgeted as that entry, any other by the memory it reports. ``FREEZEGEN_LOCAL_GPU`` overrides
the probe: ``none``, or ``NAME,MEMORY_MIB,MAJOR.MINOR`` (a machine whose driver is elsewhere,
and the tests). The answer is asked once per process.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from freezegen.spec.presets import GPUS, MIB

AUTO = "auto"
ENV = "FREEZEGEN_LOCAL_GPU"


@dataclass(frozen=True)
class LocalGpu:
    """The local GPU: its name as the driver says it, memory, compute capability, and the
    entry of freezegen's GPU table it is (None: an unlisted card, budgeted by its memory)."""

    name: str
    memory_bytes: int
    compute_capability: tuple[int, int]
    known: str | None

    @property
    def bf16(self) -> bool:
        return self.compute_capability >= (8, 0)

    def describe(self) -> str:
        """``NVIDIA A100-SXM4-80GB (budgeted as A100-80GB)`` or with its memory."""
        if self.known is not None:
            return f"{self.name} (budgeted as {self.known})"
        return f"{self.name} ({self.memory_bytes / 2**30:.1f} GiB, an unlisted card)"


def local_gpu() -> LocalGpu | None:
    """The first local GPU, or None when there is none (no driver, no nvidia-smi, no card)."""
    override = os.environ.get(ENV)
    if override is not None:
        return _parse(override.strip()) if override.strip().lower() != "none" else None
    return _probe()


@functools.cache
def _probe() -> LocalGpu | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=name,memory.total,compute_cap", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = done.stdout.strip().splitlines()[:1]
    return _parse(first[0]) if done.returncode == 0 and first else None


def _parse(line: str) -> LocalGpu | None:
    """``NAME, MEMORY_MIB, MAJOR.MINOR`` as nvidia-smi prints it; None when unreadable."""
    parts = [p.strip() for p in line.rsplit(",", 2)]
    if len(parts) != 3:
        return None
    name, memory, capability = parts
    try:
        memory_bytes = int(float(memory)) * MIB
        major, _, minor = capability.partition(".")
        cc = (int(major), int(minor or 0))
    except ValueError:
        return None
    return LocalGpu(name, memory_bytes, cc, _known(name, memory_bytes))


def _known(name: str, memory_bytes: int) -> str | None:
    """The table entry whose model the driver's name holds and whose memory is within 10%."""
    words = set(re.split(r"[\s\-_]+", name.upper()))
    for key, gpu in GPUS.items():
        model = key.upper().split("-")
        model = [m for m in model if not m.endswith("GB")]
        if all(m in words for m in model) and abs(gpu.memory_bytes - memory_bytes) <= (
            0.1 * gpu.memory_bytes
        ):
            return key
    return None


def resolve_auto(data: object) -> object:
    """Spec data with ``hardware.gpu: auto`` replaced by the local GPU (its table name, or
    ``memory_gib`` and ``bf16`` for an unlisted card), or with no hardware section when there is
    no GPU here (nothing to budget for: lint's FG121 says so). Anything else is returned as is."""
    if not isinstance(data, dict):
        return data
    hardware = data.get("hardware")
    if not isinstance(hardware, dict) or hardware.get("gpu") != AUTO:
        return data
    found = local_gpu()
    rest = {k: v for k, v in hardware.items() if k != "gpu"}
    if found is None:
        return {**data, "hardware": None}
    if found.known is not None:
        return {**data, "hardware": {**rest, "gpu": found.known}}
    memory = {"memory_gib": found.memory_bytes / 2**30, "bf16": found.bf16}
    return {**data, "hardware": {**rest, **memory}}
