"""Run generated scripts for a matrix of tiny specs covering every spec feature, on CPU.

Each case trains for a couple of dozen steps; every case must learn (the loss falls), leave its
frozen tensors bit-identical to their initial values and change every trainable one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import (
    FACTORY_MODULE,
    Run,
    final_weights,
    generate,
    initial_state,
    run_scripts,
    tiny_spec,
)

# Each test runs generated scripts in subprocesses: seconds each.
pytestmark = pytest.mark.slow

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2-fp32-adamw-cosine-freeze-except": (
        "gpt2",
        {
            "freeze": {"layers": {"first": 1}, "patterns": ["*.wpe.*"], "except": ["*.bias"]},
            "scheduler": {"name": "cosine", "warmup_steps": 3},
            "model": {"hf_config": "./config.json", "dropout": 0.1},
            "train": {"max_steps": 30, "grad_clip": 1.0, "seed": 7, "log_every": 1},
        },
    ),
    "llama-fp16-sgd-linear-modules-patterns": (
        "llama",
        {
            "freeze": {"layers": [0], "modules": ["attention"], "patterns": ["*.norm.*"]},
            "precision": "fp16",
            "optimizer": {"name": "sgd", "lr": 0.3, "momentum": 0.9, "implementation": "loop"},
            "scheduler": {"name": "linear", "warmup_steps": 2},
            "batch": {"micro_batch_size": 4, "grad_accum_steps": 2, "seq_len": 16},
        },
    ),
    "bert-classify-bf16-adam-checkpointing-all": (
        "bert",
        {
            "model": {"hf_config": "./config.json", "head": "sequence-classification"},
            "freeze": {"embeddings": True, "layers": "0"},
            "precision": "bf16",
            "optimizer": {"name": "adam", "lr": 1.0e-2, "implementation": "fused"},
            "activation_checkpointing": True,
            "train": {"max_steps": 40, "grad_clip": 1.0, "seed": 7, "log_every": 1},
        },
    ),
    "qwen2-bf16pure-unfreeze-schedule-checkpoint-subset": (
        "qwen2",
        {
            "freeze": {
                "embeddings": True,
                "layers": {"last": 2},
                "schedule": [{"at_step": 6, "unfreeze": {"layers": "1"}}],
            },
            "precision": "bf16-pure",
            "optimizer": {"name": "adamw", "lr": 1.0e-2, "weight_decay": 0.01},
            "activation_checkpointing": {"layers": "1"},
        },
    ),
    "mistral-fp32-grad-accum-no-clip": (
        "mistral",
        {
            "freeze": {"layers": {"first": 1}},
            "batch": {"micro_batch_size": 2, "grad_accum_steps": 4, "seq_len": 16},
            "train": {"max_steps": 20, "grad_clip": None, "seed": 3, "log_every": 1},
        },
    ),
    "qwen3-bf16-freeze-first-checkpointing": (
        "qwen3",
        {
            "freeze": {"embeddings": True, "layers": {"first": 1}},
            "precision": "bf16",
            "activation_checkpointing": True,
        },
    ),
    "phi3-fp32-dropout-freeze-attention": (
        "phi3",
        {
            "model": {"hf_config": "./config.json", "dropout": 0.1},
            "freeze": {"layers": [0], "modules": ["attention"]},
        },
    ),
    "olmo2-fp32-freeze-norms": (
        "olmo2",
        {"freeze": {"layers": {"last": 1}, "modules": ["norm"], "patterns": ["*.q_norm.*"]}},
    ),
    "gemma3-bf16pure-freeze-mlp": (
        "gemma3",
        {
            "freeze": {"layers": {"first": 1}, "modules": ["mlp"]},
            "precision": "bf16-pure",
            "optimizer": {"name": "adamw", "lr": 1.0e-2, "weight_decay": 0.01},
        },
    ),
    "factory-model-and-data-checkpoint-wrap": (
        "gpt2",
        {
            "model": {"factory": "tiny_factory:build"},
            "data": {"source": "factory", "factory": "tiny_factory:dataset"},
            "freeze": {"embeddings": True, "layers": {"last": 1}, "modules": ["mlp"]},
            "activation_checkpointing": {"layers": "every-2"},
            # 70 examples in micro-batches of 4, windows of 3: short windows end each epoch.
            "batch": {"micro_batch_size": 4, "grad_accum_steps": 3, "seq_len": 16},
        },
    ),
    # Top-2 of 4 experts through transformers' grouped_mm experts code: block 0 and every
    # block's fused expert tensors frozen, block 1's router and attention train.
    "mixtral-bf16-freeze-experts-checkpointing": (
        "mixtral",
        {
            "freeze": {"layers": "0", "patterns": ["*.experts.*"]},
            "precision": "bf16",
            "activation_checkpointing": {"layers": "1"},
        },
    ),
    # The multipliers at the published values: logits divided by 8 learn slowly at lr 1e-2.
    "granite-fp32-tied-freeze-first-block": (
        "granite",
        {"freeze": {"layers": {"first": 1}}, "optimizer": {"name": "adamw", "lr": 5.0e-2}},
    ),
}


@pytest.fixture(scope="module")
def matrix_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    scripts = {}
    for name, (family, sections) in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        spec = tiny_spec(folder, family, **sections)
        if "factory" in sections.get("model", {}):
            (folder / "tiny_factory.py").write_text(FACTORY_MODULE)
        scripts[name] = generate(spec)
    return dict(zip(scripts, run_scripts(scripts.values()), strict=True))


def _thawed(ns: dict[str, Any], model: torch.nn.Module) -> set[str]:
    return {
        name
        for entry in ns["UNFREEZE"]
        if entry["at_step"] < ns["MAX_STEPS"]
        for name in ns["select_parameters"](model, entry, ns["MODULE_KINDS"])
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_learns_and_respects_freezing(case: str, matrix_runs: dict[str, Run]) -> None:
    run = matrix_runs[case].check()
    losses = run.losses
    assert len(losses) >= 10
    # Compare averages of the first and last few steps: single steps are noisy.
    early, late = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert late < 0.9 * early, f"loss did not fall: {losses}"
    assert "peak memory: measured n/a on CPU" in run.stdout

    initial, model, ns = initial_state(run.script)
    frozen = ns["frozen_parameters"](model) - _thawed(ns, model)
    assert frozen, "every case freezes something"
    final = final_weights(run.script)
    dtype = torch.bfloat16 if ns["PRECISION"] == "bf16-pure" else torch.float32
    names = {n for n, _ in model.named_parameters()} & set(final)
    for name in sorted(names):
        before, after = initial[name].to(dtype), final[name]
        if name in frozen:
            assert torch.equal(before, after), f"frozen {name} changed"
        else:
            assert not torch.equal(before, after), f"trainable {name} did not change"
    assert frozen <= names


def test_partial_window_and_checkpoint_rotation(matrix_runs: dict[str, Run]) -> None:
    run = matrix_runs["factory-model-and-data-checkpoint-wrap"].check()
    folder = Path(run.script).parent / "checkpoints"
    assert sorted(p.name for p in folder.glob("step-*.pt")) == [
        "step-00000016.pt",
        "step-00000024.pt",
    ]
    state = torch.load(folder / "step-00000024.pt", weights_only=True)
    # 18 micro-batches per epoch (70 / 4, rounded up) in windows of 3: 6 steps an epoch.
    assert state["data"]["epoch"] == 3 and state["data"]["position"] == 18
    assert {"model", "optimizer", "scheduler", "data", "rng", "step"} <= set(state)
