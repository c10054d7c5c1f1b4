"""The recipe of a generated script: which template parts make it up, decided from the spec.

``templates/train.py.j2`` is a skeleton with one slot per concern: how to run it (``usage``,
``environment``, ``log``), the ``model``, the ``data``, the optimizer ``step``, the
``checkpoint`` format, the ``processes`` of a torchrun job and the ``run`` itself. Each slot
holds the list of parts (``templates/parts/<concern>/<name>.py.j2``) that :func:`choose_parts`
picks here; the skeleton places them in order and :func:`imports_for` lists the imports they
need. A part is in a script or is not: no template tests the strategy, the data source or the
model kind.

The parts for one process are the base. A part that several processes run differently is a
child template (``{% extends %}``) overriding only the blocks that differ (``step/ddp`` extends
``step/ranks``, which extends ``step/one``), so a single-process script is rendered from
templates that never mention ranks.
"""

from __future__ import annotations

from freezegen.spec.models import Spec

# Every script imports these; the parts' own needs are listed in PART_IMPORTS.
COMMON_IMPORTS = (
    "import os",
    "import pickle",
    "import random",
    "import shutil",
    "import sys",
    "import time",
    "from fnmatch import fnmatchcase",
    "from pathlib import Path",
    "import torch",
    "import torch.nn.functional as F",
    "from torch import nn",
    "from torch.utils.data import default_collate",
)

_STATE_DICT = """from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)"""

# What a part needs imported beyond COMMON_IMPORTS (an import used by several parts that always
# come together is listed once, under the part a reader would look for it in).
PART_IMPORTS: dict[str, tuple[str, ...]] = {
    "parts/model/factory.py.j2": ("import importlib",),
    "parts/model/checkpointing-wrap.py.j2": ("from torch.utils.checkpoint import checkpoint",),
    "parts/data/factory.py.j2": ("import importlib",),
    "parts/data/jsonl.py.j2": ("import json",),
    "parts/step/lr-cosine.py.j2": ("import math",),
    "parts/step/ddp.py.j2": ("import contextlib",),
    "parts/processes/start.py.j2": ("import torch.distributed as dist",),
    "parts/processes/wrap.py.j2": ("from torch.nn.parallel import DistributedDataParallel",),
    "parts/processes/shard.py.j2": ("from torch.distributed.fsdp import fully_shard",),
    # The sharded checkpoint and the gathered final weights (checkpoint/final-sharded).
    "parts/checkpoint/sharded.py.j2": ("import torch.distributed.checkpoint as dcp", _STATE_DICT),
}
# FSDP2 with fp16: each rank holds only its gradient shards, so inf/NaN checks must agree.
SHARDED_SCALER = "from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler"

_PROCESS_KINDS = {"none": "one", "ddp": "ddp", "fsdp": "fsdp"}


def _part(name: str) -> str:
    return f"parts/{name}.py.j2"


def choose_parts(spec: Spec, hf: bool) -> dict[str, list[str]]:
    """Return the template parts of ``spec``'s script, slot by slot, in the order they appear.

    ``hf`` says whether the model is a Hugging Face one (else a factory's). Never raises: the
    spec is valid and GenerateError's checks have run.
    """
    strategy = spec.distributed.strategy
    ranks = strategy != "none"
    ranks_suffix = "-ranks" if ranks else ""
    kind = _PROCESS_KINDS[strategy]
    source = spec.data.source
    if source == "synthetic":
        source += ranks_suffix
    checkpointing = []
    if spec.checkpointing is not None:
        checkpointing = [_part("model/checkpointing-hf" if hf else "model/checkpointing-wrap")]
    checkpoint = ["checkpoint/files-sharded" if strategy == "fsdp" else "checkpoint/files"]
    checkpoint += ["checkpoint/rng", *(["processes/rng-ranks"] if ranks else [])]
    checkpoint += ["checkpoint/durable"]
    if strategy == "fsdp":
        checkpoint += ["checkpoint/sharded", "checkpoint/resume-ranks", "checkpoint/final-sharded"]
    else:
        checkpoint += ["checkpoint/file", "checkpoint/resume" + ranks_suffix, "checkpoint/final"]
    processes = {
        "none": [],
        "ddp": ["processes/start", "processes/wrap"],
        "fsdp": ["processes/start", "processes/shard"],
    }[strategy]
    return {
        "usage": [_part(f"processes/usage-{kind}")],
        "environment": [_part("processes/environment")] if ranks else [],
        "log": [_part("processes/log" + ranks_suffix)],
        "model": [
            _part("model/hf" if hf else "model/factory"),
            _part("model/freeze"),
            *checkpointing,
            _part("model/thawing"),
        ],
        "data": [
            _part("data/example"),
            _part(f"data/{source}"),
            _part("data/stream" + ranks_suffix),
        ],
        "step": [
            _part("step/targets"),
            _part("step/loss-hf" if hf else "step/loss-factory"),
            _part(f"step/lr-{spec.scheduler.name}"),
            _part(f"step/{kind}"),
        ],
        "checkpoint": [_part(name) for name in checkpoint],
        "processes": [_part(name) for name in processes],
        "run": [_part(f"run/{kind}")],
    }


def imports_for(spec: Spec, parts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Return the script's import statements for ``parts``, as ruff's isort orders them:
    ``{"standard": [...], "torch": [...]}`` (the two sections), plain imports before ``from``."""
    statements = set(COMMON_IMPORTS)
    for slot in parts.values():
        for part in slot:
            statements.update(PART_IMPORTS.get(part, ()))
    if spec.distributed.strategy == "fsdp" and spec.precision == "fp16":
        statements.add(SHARDED_SCALER)
    ordered = sorted(statements, key=_isort_key)
    return {
        "standard": [s for s in ordered if not _module(s).startswith("torch")],
        "torch": [s for s in ordered if _module(s).startswith("torch")],
    }


def _module(statement: str) -> str:
    return statement.split()[1]


def _isort_key(statement: str) -> tuple[bool, str]:
    return statement.startswith("from "), _module(statement)
