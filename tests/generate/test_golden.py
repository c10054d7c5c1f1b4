"""Golden generated scripts: every change to what ``generate`` writes is reviewed as a diff.

Each spec of the matrix below is rendered from a fixed folder layout and compared with
``tests/generate/golden/<name>.py``. Refresh them with ``python -m pytest --update-golden``
(never by hand) and read the diff before committing it. The scripts themselves are executed by
the other generate tests; these only pin their text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freezegen.generate import render_script
from freezegen.spec import load_spec
from tests.conftest import Golden
from tests.generate.conftest import FACTORY_MODULE, REPO, tiny_spec

GOLDEN = Path(__file__).parent / "golden"

CKPT_UNFREEZE = {
    "precision": "bf16",
    "activation_checkpointing": {"layers": "every-2"},
    "freeze": {
        "embeddings": True,
        "layers": {"first": 2},
        "schedule": [{"at_step": 8, "unfreeze": {"layers": "1"}}],
    },
}

# name -> (family, spec sections); the model is a tiny config.json beside the spec.
EVAL_EVERYTHING: dict[str, Any] = {
    "freeze": {
        "layers": {"first": 2},
        "schedule": [
            {"at_step": 8, "unfreeze": {"layers": "1"}},
            {"when": {"plateau": {"patience": 2, "min_delta": 0.01}}, "unfreeze": {"layers": "0"}},
        ],
    },
    "eval": {"every_steps": 4, "max_batches": 2, "at_start": True},
    "train": {"early_stop": {"patience": 3, "min_delta": 0.0}},
    "checkpoint": {"keep_best": True},
    "distributed": {"strategy": "ddp"},
    "hardware": {"gpus_per_node": 2, "memory_gib": 24},
}
MATRIX: dict[str, tuple[str, dict[str, Any]]] = {
    "tiny-fp32": ("gpt2", {}),
    "bf16-ckpt-unfreeze": ("llama", CKPT_UNFREEZE),
    "fp16-scaler": ("gpt2", {"precision": "fp16", "scheduler": {"name": "cosine"}}),
    "bf16-pure-linear": ("qwen2", {"precision": "bf16-pure", "scheduler": {"name": "linear"}}),
    "ddp": (
        "gpt2",
        {
            "distributed": {"strategy": "ddp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "batch": {"grad_accum_steps": 2},
        },
    ),
    "ddp-fp16-unfreeze": (
        "llama",
        {
            "precision": "fp16",
            "distributed": {"strategy": "ddp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "freeze": {
                "layers": {"first": 1},
                "schedule": [{"at_step": 4, "unfreeze": {"layers": "0"}}],
            },
        },
    ),
    "fsdp": (
        "llama",
        {
            "distributed": {"strategy": "fsdp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "precision": "bf16",
        },
    ),
    "fsdp-fp16-ckpt": (
        "gpt2",
        {
            "distributed": {"strategy": "fsdp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "precision": "fp16",
            "activation_checkpointing": True,
        },
    ),
    "text-data": (
        "gpt2",
        {"data": {"source": "text", "path": "corpus.txt", "tokenizer": "tokenizer"}},
    ),
    "jsonl-classifier": (
        "bert",
        {
            "model": {
                "hf_config": "./config.json",
                "head": "sequence-classification",
                "num_labels": 3,
            },
            "data": {"source": "jsonl", "path": "data.jsonl", "tokenizer": "tokenizer"},
        },
    ),
    # File data: a completion set packed with a held-out split, a streamed chat set with a
    # validation file.
    "completion-packed": (
        "llama",
        {
            "data": {
                "source": "parquet",
                "path": "train.parquet",
                "tokenizer": "tokenizer",
                "format": "completion",
                "packing": True,
                "validation": {"split": 0.1},
            }
        },
    ),
    "chat-streamed": (
        "qwen2",
        {
            "data": {
                "source": "jsonl",
                "path": "chats.jsonl",
                "tokenizer": "tokenizer",
                "format": "chat",
                "truncation": "drop",
                "streaming": True,
                "validation": {"path": "val.jsonl"},
            }
        },
    ),
    # Adapters (peft), over a full, an NF4 and an INT8 (bitsandbytes) base.
    "lora-merge": (
        "llama",
        {
            "precision": "bf16",
            "adapter": {
                "r": 4,
                "alpha": 8,
                "dropout": 0.05,
                "targets": ["q_proj", "v_proj"],
                "layers": {"last": 1},
                "train": ["lm_head.*"],
                "merge": True,
            },
        },
    ),
    "qlora-nf4-ckpt": (
        "llama",
        {
            "precision": "fp16",
            "activation_checkpointing": True,
            "adapter": {"r": 8, "targets": "all-linear", "merge": True},
            "quantization": {"weights": "nf4", "double_quant": True, "compute": "fp16"},
        },
    ),
    "lora-int8-ddp": (
        "gpt2",
        {
            "distributed": {"strategy": "ddp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "adapter": {"r": 4, "targets": ["attention"]},
            "quantization": {"weights": "int8"},
        },
    ),
    "lora-torchao-ddp": (
        "llama",
        {
            "distributed": {"strategy": "ddp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "adapter": {"r": 4, "targets": ["attention"]},
            "quantization": {"weights": "int8", "library": "torchao"},
        },
    ),
    "lora-torchao-merge": (
        "llama",
        {
            "precision": "bf16",
            "adapter": {"r": 4, "targets": ["attention", "mlp"], "merge": True},
            "quantization": {"weights": "int8", "library": "torchao"},
        },
    ),
    # LoRA under FSDP2: sharded adapter-only checkpoints, the final adapter gathered to rank 0,
    # merged there into a base built again.
    "lora-fsdp-merge": (
        "llama",
        {
            "distributed": {"strategy": "fsdp"},
            "hardware": {"gpus_per_node": 2, "memory_gib": 24},
            "precision": "bf16",
            "adapter": {
                "r": 4,
                "targets": ["attention", "mlp"],
                "train": ["*norm.weight"],
                "merge": True,
            },
        },
    ),
    # A quantized base without an adapter: the frozen top block in torchao int8, checkpoints of
    # what trains, the final model dequantized.
    "torchao-frozen-top": (
        "llama",
        {
            "precision": "bf16",
            "freeze": {"layers": "1"},
            "quantization": {"weights": "int8", "library": "torchao"},
        },
    ),
    "weights-compile": (
        "mistral",
        {"model": {"hf_config": "./config.json", "weights": "weights"}, "compile": True},
    ),
    # Evaluation with everything that acts on it: the best checkpoint, early stopping and a
    # plateau entry beside a fixed one, in each checkpoint format.
    "eval-ddp-plateau": ("gpt2", EVAL_EVERYTHING),
    "eval-fsdp-fp16": (
        "llama",
        {**EVAL_EVERYTHING, "precision": "fp16", "distributed": {"strategy": "fsdp"}},
    ),
}

FACTORY: dict[str, dict[str, Any]] = {
    "factory": {
        "model": {"factory": "tiny_factory:build"},
        "data": {"source": "factory", "factory": "tiny_factory:dataset"},
        "freeze": {"layers": {"last": 1}, "modules": ["attention"]},
        "activation_checkpointing": {"layers": "every-2"},
    },
    "factory-ddp-synthetic": {
        "model": {"factory": "tiny_factory:build"},
        "distributed": {"strategy": "ddp"},
        "hardware": {"gpus_per_node": 2, "memory_gib": 24},
        "freeze": {"embeddings": True, "patterns": ["*.norm.*"]},
    },
}

EXAMPLES = sorted(REPO.glob("examples/**/*freezegen.yaml"))


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_matrix_matches_golden(name: str, tmp_path: Path, golden: Golden) -> None:
    family, sections = MATRIX[name]
    spec_path = tiny_spec(tmp_path / name, family, **sections)
    text = render_script(load_spec(spec_path), spec_path, spec_path.parent)
    golden.check_text(text, GOLDEN / f"{name}.py")


@pytest.mark.parametrize("name", sorted(FACTORY))
def test_factory_matches_golden(name: str, tmp_path: Path, golden: Golden) -> None:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "tiny_factory.py").write_text(FACTORY_MODULE)
    spec_path = tiny_spec(folder, "gpt2", **FACTORY[name])
    text = render_script(load_spec(spec_path), spec_path, spec_path.parent)
    golden.check_text(text, GOLDEN / f"{name}.py")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_examples_match_golden(example: Path, golden: Golden) -> None:
    # Rendered as if written beside the spec, so paths in the script do not depend on tmp dirs.
    text = render_script(load_spec(example), example, example.parent)
    name = str(example.relative_to(REPO / "examples")).replace("/", "--").removesuffix(".yaml")
    golden.check_text(text, GOLDEN / "examples" / f"{name}.py")
