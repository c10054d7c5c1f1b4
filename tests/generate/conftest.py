"""Tiny specs, generated scripts and the subprocesses that run them (CPU, one thread each)."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from freezegen.generate import render_script
from freezegen.spec import load_spec
from tests.family_configs import TINY_CONFIGS

REPO = Path(__file__).resolve().parents[2]

FACTORY_MODULE = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.attn = nn.Linear(d, d)
        self.mlp = nn.Sequential(
            nn.Linear(d, 2 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * d, d)
        )

    def forward(self, x):
        x = x + self.attn(self.norm(x)).cumsum(1) / torch.arange(1, x.shape[1] + 1)[:, None]
        return x + self.mlp(x)


class TinyLM(nn.Module):
    def __init__(self, vocab=64, d=32, n=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(n))
        self.head = nn.Linear(d, vocab)

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build():
    return TinyLM()


class Repeats(torch.utils.data.Dataset):
    """Sequences counting up modulo 64 from a start token: learnable."""

    def __len__(self):
        return 70

    def __getitem__(self, i):
        return (torch.arange(16) + i) % 64


def dataset():
    return Repeats()
'''


def tiny_spec(tmp: Path, family: str = "gpt2", **sections: Any) -> Path:
    """Write config.json and a spec for a tiny ``family`` model into ``tmp``; return the spec.

    ``sections`` replace top-level keys of the spec (dicts other than ``model`` are merged one
    level deep).
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps(TINY_CONFIGS[family]))
    spec: dict[str, Any] = {
        "version": 1,
        "model": {"hf_config": "./config.json", "head": "causal-lm"},
        "optimizer": {"name": "adamw", "lr": 1.0e-2},
        "scheduler": {"name": "constant", "warmup_steps": 0},
        "batch": {"micro_batch_size": 8, "grad_accum_steps": 1, "seq_len": 16},
        "train": {"max_steps": 24, "grad_clip": 1.0, "seed": 7, "log_every": 1},
        "checkpoint": {"dir": "checkpoints", "every_steps": 8, "keep_last": 2},
    }
    for key, value in sections.items():
        if key != "model" and isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    path = tmp / "freezegen.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def generate(spec_path: Path, script: Path | None = None) -> Path:
    """Render the script for ``spec_path`` next to it (or at ``script``); return its path."""
    script = script or spec_path.parent / "train.py"
    script.write_text(render_script(load_spec(spec_path), spec_path, script.parent))
    return script


def script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        TRANSFORMERS_VERBOSITY="error",
        HF_HUB_OFFLINE="1",
        PYTHONHASHSEED="0",
    )
    return env


@dataclass
class Run:
    script: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def losses(self) -> list[float]:
        return [
            float(line.split("| loss ")[1].split(" ")[0])
            for line in self.stdout.splitlines()
            if line.startswith("step ") and "| loss " in line
        ]

    def check(self) -> Run:
        assert self.returncode == 0, f"{self.script} failed:\n{self.stdout}\n{self.stderr}"
        return self


def run_script(script: Path, timeout: float = 120) -> Run:
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(script, proc.returncode, proc.stdout, proc.stderr)


def run_and_kill(script: Path, steps: int, delay: float) -> int | None:
    """Start the script, SIGKILL it ``delay`` seconds after it logs its ``steps``-th step of
    this run; None if it was killed. Counting steps (not seconds from the first one) keeps the
    kill inside the run on a fast machine, where 16 tiny steps finish within a quarter second."""
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if line.startswith("step "):
            seen += 1
            if seen == steps:
                time.sleep(delay)
                break
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None
    proc.stdout.read()
    return proc.wait()


def run_scripts(scripts: Iterable[Path]) -> list[Run]:
    """Run scripts two at a time (the CI machine has two cores)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(run_script, scripts))


def script_namespace(script: Path) -> dict[str, Any]:
    """Import a generated script without running main(), its folder on sys.path."""
    sys.path.insert(0, str(script.parent))
    try:
        return runpy.run_path(str(script), run_name="generated_script")
    finally:
        sys.path.remove(str(script.parent))


def initial_state(script: Path) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The weights the script starts from: its own seeding and model construction."""
    ns = script_namespace(script)
    sys.path.insert(0, str(script.parent))
    try:
        ns["seed_everything"](ns["SEED"])
        model = ns["build_model"]()
    finally:
        sys.path.remove(str(script.parent))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, model, ns


def final_weights(script: Path) -> dict[str, Any]:
    """The final weights by the names the model gives them. A Hugging Face folder is loaded
    with transformers, which undoes the renaming its save may apply (Mixtral's fused experts are
    written as one tensor per expert)."""
    final = script.parent / "checkpoints" / "final"
    if (final / "model.safetensors").exists():
        import transformers

        config = transformers.AutoConfig.from_pretrained(final)
        cls = getattr(transformers, config.architectures[0])
        return cls.from_pretrained(final, dtype="auto").state_dict()
    import torch

    return torch.load(final / "model.pt", weights_only=True)


@pytest.fixture
def factory_module(tmp_path: Path) -> Path:
    (tmp_path / "tiny_factory.py").write_text(FACTORY_MODULE)
    return tmp_path
