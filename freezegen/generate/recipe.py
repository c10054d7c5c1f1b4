"""The recipe of a generated script: which template parts make it up, decided from the spec.

``templates/train.py.j2`` is a skeleton with one slot per concern: how to run it (``usage``,
``environment``, ``log``), the ``model``, the ``data``, the optimizer ``step``, the
``checkpoint`` format, the ``processes`` of a torchrun job, the ``run`` itself and its
``entry`` point. Each slot holds the list of parts (``templates/parts/<concern>/<name>.py.j2``)
that :func:`choose_parts` picks here; the skeleton places them in order and :func:`imports_for`
lists the imports they need. A part is in a script or is not: no template tests the strategy or
the data source, and the model kind only in save_final (``save_pretrained`` or ``torch.save``,
in either format).

The parts for one process are the base. A part that several processes run differently is a
child template (``{% extends %}``) overriding only the blocks that differ (``step/ddp`` extends
``step/ranks``, which extends ``step/one``), so a single-process script is rendered from
templates that never mention ranks.
"""

from __future__ import annotations

import sys

from freezegen.generate.data import data_parts
from freezegen.spec.evaluation import uses_plateaus
from freezegen.spec.models import FILE_SOURCES, Spec

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
    "parts/data/streamed.py.j2": ("import itertools",),
    "parts/data/streamed-ranks.py.j2": ("import itertools",),
    "parts/step/lr-cosine.py.j2": ("import math",),
    "parts/run/evaluate.py.j2": ("import math",),
    "parts/run/evaluate-ranks.py.j2": ("import math",),
    "parts/run/evaluate-fsdp.py.j2": ("import math",),
    "parts/step/ddp.py.j2": ("import contextlib",),
    "parts/step/fsdp.py.j2": ("from torch.distributed.tensor import DTensor",),
    "parts/processes/start.py.j2": ("import torch.distributed as dist",),
    "parts/run/entry-ranks.py.j2": ("import gc",),
    "parts/run/arguments.py.j2": ("import argparse",),
    "parts/run/requirements.py.j2": ("import re", "from importlib import metadata"),
    "parts/run/metrics.py.j2": ("import json", "import math"),
    "parts/run/metrics-ranks.py.j2": ("import json", "import math"),
    "parts/processes/wrap.py.j2": ("from torch.nn.parallel import DistributedDataParallel",),
    "parts/processes/shard.py.j2": ("from torch.distributed.fsdp import fully_shard",),
    "parts/model/quantize.py.j2": ("import tempfile", "import safetensors.torch"),
    "parts/checkpoint/final-adapter.py.j2": ("import safetensors.torch",),
    "parts/checkpoint/final-adapter-sharded.py.j2": ("import safetensors.torch",),
    "parts/checkpoint/files.py.j2": ("import re",),
    "parts/checkpoint/files-sharded.py.j2": ("import re",),
    "parts/checkpoint/digest.py.j2": ("import hashlib",),
    # The sharded checkpoint and the gathered final weights (checkpoint/final-sharded).
    "parts/checkpoint/sharded.py.j2": ("import torch.distributed.checkpoint as dcp", _STATE_DICT),
    "parts/checkpoint/sharded-adapter.py.j2": (
        "import torch.distributed.checkpoint as dcp",
        _STATE_DICT,
    ),
}
# FSDP2 with fp16: each rank holds only its gradient shards, so inf/NaN checks must agree.
SHARDED_SCALER = "from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler"

_PROCESS_KINDS = {"none": "one", "ddp": "ddp", "fsdp": "fsdp"}
# The torchrun side of a script: joining the job, then replicating or sharding the model.
_PROCESS_PARTS = {
    "none": (),
    "ddp": ("processes/start", "processes/wrap"),
    "fsdp": ("processes/start", "processes/shard"),
}
# The checkpoint format: a file per step (one process, DDP: rank 0 writes the replica all hold),
# or a folder of shards per step (FSDP2); the random states of every rank under torchrun.
# Under torchrun, rank 0 checks the folder and chooses the checkpoint, and every rank learns
# the outcome ("-ranks").
_CHECKPOINT_PARTS = {
    "none": (
        "checkpoint/folder",
        "checkpoint/files",
        "checkpoint/digest",
        "checkpoint/plan",
        "checkpoint/rng",
        "checkpoint/durable",
        "checkpoint/file",
        "checkpoint/resume",
        "checkpoint/final",
    ),
    "ddp": (
        "checkpoint/folder-ranks",
        "checkpoint/files",
        "checkpoint/digest",
        "checkpoint/plan",
        "checkpoint/rng",
        "processes/rng-ranks",
        "checkpoint/durable",
        "checkpoint/file",
        "checkpoint/resume-ranks",
        "checkpoint/final",
    ),
    "fsdp": (
        "checkpoint/folder-ranks",
        "checkpoint/files-sharded",
        "checkpoint/digest",
        "checkpoint/plan",
        "checkpoint/rng",
        "processes/rng-ranks",
        "checkpoint/durable",
        "checkpoint/sharded",
        "checkpoint/resume-ranks",
        "checkpoint/final-sharded",
    ),
}


# Evaluation: every rank its share under torchrun; FSDP2 reshards the root after it.
_EVALUATE_PARTS = {"none": "run/evaluate", "ddp": "run/evaluate-ranks", "fsdp": "run/evaluate-fsdp"}
# The best checkpoint's copy, in the checkpoint format of each strategy.
_BEST_PARTS = {
    "none": "checkpoint/best",
    "ddp": "checkpoint/best-ranks",
    "fsdp": "checkpoint/best-sharded",
}


def _part(name: str) -> str:
    return f"parts/{name}.py.j2"


def choose_parts(spec: Spec) -> dict[str, list[str]]:
    """Return the template parts of ``spec``'s script, slot by slot, in the order they appear.

    Never raises: the spec is valid, and what a script cannot do was refused before (see
    :class:`~freezegen.generate.errors.GenerateError`).
    """
    strategy = spec.distributed.strategy
    kind = _PROCESS_KINDS[strategy]
    several = strategy != "none"  # processes: the parts that differ come as "<part>-ranks"
    ranks = "-ranks" if several else ""
    model = "hf" if spec.model.factory is None else "factory"
    source = spec.data.source
    if source in FILE_SOURCES:
        data = [_part(name) for name in data_parts(spec, several)]
    else:
        synthetic = ranks if source == "synthetic" else ""
        data = [_part("data/example"), _part(f"data/{source}{synthetic}")]
        # Evaluation on synthetic data reads held-out sequences; file sources hold their own.
        data += [_part("data/held-out" + ranks)] if spec.eval is not None else []
        data += [_part("data/share-ranks")] if several else []
        data.append(_part("data/stream" + ranks))
    checkpointing = []
    if spec.checkpointing is not None:
        # transformers' own switch for its models; a factory's blocks are wrapped.
        checkpointing = [_part("model/checkpointing-" + ("hf" if model == "hf" else "wrap"))]
    # A quantized base is loaded through transformers (quantize); an adapter is attached after
    # the freeze rules are defined (its selection uses their helpers) and saved in peft's format.
    quantize = [_part("model/quantize")] if quantized(spec) else []
    # What trains beside a base built again from the spec is all its checkpoints hold.
    # What a quantized weight is (adapters and quantized bases refuse to train one); saving and
    # loading what trains alone, where the checkpoint is one file (FSDP2's sharded checkpoints
    # leave the frozen parameters out through DCP's options instead).
    stored = [_part("model/stored")] if spec.adapter is not None or quantized(spec) else []
    trained = [_part("model/trained")] if trained_only(spec) and strategy != "fsdp" else []
    adapter = [_part("model/adapter")] if spec.adapter is not None else []
    checkpoint = list(_CHECKPOINT_PARTS[strategy])
    if spec.adapter is not None:
        # Checkpoints hold what trains alone; FSDP2's are shards of it, and its final adapter
        # is gathered to rank 0 first.
        if strategy == "fsdp":
            checkpoint[checkpoint.index("checkpoint/sharded")] = "checkpoint/sharded-adapter"
        checkpoint[-1] = "checkpoint/final-adapter" + ("-sharded" if strategy == "fsdp" else "")
    elif quantized_frozen(spec):
        checkpoint[-1] = "checkpoint/final-dequantized"
    # Evaluation (the eval section): held-out data, the evaluation itself, the best checkpoint,
    # and thawing on validation plateaus.
    evaluate = [_part(_EVALUATE_PARTS[strategy])] if spec.eval is not None else []
    if spec.checkpoint.keep_best:
        checkpoint.append(_BEST_PARTS[strategy])
    thawing = "model/thawing-plateau" if uses_plateaus(spec) else "model/thawing"
    return {
        "usage": [_part(f"processes/usage-{kind}")],
        "environment": [_part("processes/environment")] if several else [],
        "log": [_part("processes/log" + ranks)],
        "model": [
            _part("model/pretrained" if spec.model.pretrained is not None else f"model/{model}"),
            *quantize,
            _part("model/freeze"),
            *stored,
            *trained,
            *adapter,
            *checkpointing,
            _part(thawing),
        ],
        "data": data,
        "step": [
            _part("step/targets"),
            _part(f"step/loss-{model}"),
            _part(f"step/lr-{spec.scheduler.name}"),
            _part(f"step/{kind}"),
        ],
        "checkpoint": [_part(name) for name in checkpoint],
        "processes": [_part(name) for name in _PROCESS_PARTS[strategy]],
        "run": [
            _part("run/metrics" + ranks),
            *([_part("run/tensorboard")] if spec.logging.tensorboard else []),
            _part("run/progress"),
            _part("run/memory" + ranks),
            _part("run/arguments"),
            _part("run/requirements"),
            *evaluate,
            _part(f"run/{kind}"),
        ],
        "entry": [_part("run/entry" + ranks)],
    }


def quantized(spec: Spec) -> bool:
    """Whether ``spec``'s script loads its base with quantized weights."""
    return spec.quantization is not None and spec.quantization.weights != "none"


def quantized_frozen(spec: Spec) -> bool:
    """Whether ``spec``'s script stores its frozen blocks' linears quantized without an adapter
    (what the freeze section leaves trainable trains fully)."""
    return quantized(spec) and spec.adapter is None


def trained_only(spec: Spec) -> bool:
    """Whether ``spec``'s checkpoints hold only the parameters that train: with an adapter or a
    quantized base, the frozen base is built again from the spec when a run resumes (pickling
    quantized weights into every checkpoint would also need their library to read them)."""
    return spec.adapter is not None or quantized(spec)


def imports_for(spec: Spec, parts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Return the script's import statements for ``parts``, as ruff's isort orders them:
    ``{"standard": [...], "third_party": [...]}`` (the two sections: the standard library, then
    torch and, in adapter scripts, peft and safetensors), plain imports before ``from``."""
    statements = set(COMMON_IMPORTS)
    for slot in parts.values():
        for part in slot:
            statements.update(PART_IMPORTS.get(part, ()))
    if spec.distributed.strategy == "fsdp" and spec.precision == "fp16":
        statements.add(SHARDED_SCALER)
    ordered = sorted(statements, key=_isort_key)
    return {
        "standard": [s for s in ordered if _is_standard(s)],
        "third_party": [s for s in ordered if not _is_standard(s)],
    }


def _is_standard(statement: str) -> bool:
    return _module(statement).split(".")[0] in sys.stdlib_module_names


def _module(statement: str) -> str:
    return statement.split()[1]


def _isort_key(statement: str) -> tuple[bool, str]:
    return statement.startswith("from "), _module(statement)
