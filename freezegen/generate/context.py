"""The values a generated script carries, and the context its templates are rendered with.

:func:`build_context` turns a :class:`~freezegen.spec.models.Spec` into the mapping the
templates see: ``sections``, the already-rendered ``NAME = literal`` lines that carry every value
of the spec into the script (see :mod:`freezegen.generate.literals` for why that is the only way
in); ``parts`` and ``imports``, which template parts make up the script and what they import
(decided by :mod:`freezegen.generate.recipe`); and a few switches the parts test at one level
(``scaler``, ``weights``, ``classification`` ...) for lines that differ inside a part.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from freezegen._version import __version__
from freezegen.arch import ArchitectureError, UnknownArchitecture
from freezegen.arch.families import family_of
from freezegen.arch.freeze import freeze_rules
from freezegen.arch.hf import hf_model
from freezegen.generate.adapters import (
    adapter_runtime,
    adapter_section,
    check_adapter_supported,
    merge_kind,
    quantization_library,
)
from freezegen.generate.data import (
    chat_template_problem,
    check_data_supported,
    data_constants,
)
from freezegen.generate.errors import GenerateError
from freezegen.generate.literals import assignment
from freezegen.generate.recipe import (
    choose_parts,
    imports_for,
    quantized,
    quantized_frozen,
    trained_only,
)
from freezegen.generate.requirements import requirements_literal
from freezegen.generate.runtime import runtime_source
from freezegen.spec.evaluation import (
    missing_validation_data,
    uses_plateaus,
    validation_consumers,
)
from freezegen.spec.models import Spec, UnfreezeStep
from freezegen.spec.presets import Architecture
from freezegen.spec.selectors import runtime_selection

_OPTIMIZERS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
_AUTO_CLASSES = {
    "causal-lm": "AutoModelForCausalLM",
    "sequence-classification": "AutoModelForSequenceClassification",
}
_STRATEGY_NAMES = {"none": "one process", "ddp": "DDP", "fsdp": "FSDP2"}
_IMPLEMENTATION = {
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "loop": {"foreach": False},
}


def build_context(spec: Spec, spec_path: Path, script_dir: Path) -> dict[str, Any]:
    """Return the template context for ``spec``; raise GenerateError for what cannot be run.

    ``script_dir`` is where the script will live: paths from the spec are written relative to
    it (the script resolves them against its own folder), so the output does not depend on the
    directory freezegen runs in.
    """
    _check_supported(spec)
    model = spec.model
    hf = None
    if model.factory is None:
        try:
            hf = hf_model(model)
        except ArchitectureError as exc:
            raise GenerateError(str(exc)) from None
        if hf.family is None:
            _check_transformers_builds(hf.model_type, model.head)
    num_layers = _num_layers(spec)

    def rel(path: Path | None) -> str | None:
        return None if path is None else _relative(path, script_dir)

    b, o = spec.batch, spec.optimizer
    optimizer_kwargs: dict[str, Any] = {"lr": o.lr, "weight_decay": o.weight_decay}
    if o.name == "sgd":
        optimizer_kwargs["momentum"] = o.momentum
    else:
        optimizer_kwargs["betas"] = tuple(o.betas)
    optimizer_kwargs.update(_IMPLEMENTATION[o.implementation])

    sections: list[tuple[str, list[str]]] = [
        (
            "Where this script came from (regenerate it rather than editing these).",
            [assignment("SPEC", _relative(spec_path, script_dir))],
        ),
        (
            "The libraries beyond torch this script needs, and why (checked before their import).",
            [assignment("REQUIREMENTS", requirements_literal(spec))],
        ),
        ("Model.", _model_constants(spec, hf, rel)),
        (
            "Freezing: what is frozen before training, then what thaws at which step.",
            [
                assignment("MODULE_KINDS", _module_kinds(spec)),
                assignment("FREEZE", freeze_rules(spec.freeze, num_layers)),
                assignment(
                    "UNFREEZE",
                    [
                        {**_trigger(s), **freeze_rules(s.unfreeze, num_layers)}
                        for s in spec.freeze.schedule
                    ],
                ),
            ],
        ),
        *adapter_section(spec, _architecture(spec), num_layers),
        (
            "Optimisation.",
            [
                assignment("PRECISION", spec.precision),
                assignment("OPTIMIZER_KWARGS", optimizer_kwargs),
                assignment("WARMUP_STEPS", spec.scheduler.warmup_steps),
                assignment("MAX_STEPS", spec.train.max_steps),
                assignment("GRAD_CLIP", spec.train.grad_clip),
                assignment("SEED", spec.train.seed),
                assignment("LOG_EVERY", spec.train.log_every),
                assignment("CHECKPOINT_BLOCKS", _checkpoint_blocks(spec, num_layers)),
            ],
        ),
        (
            "Data.",
            [
                assignment("MICRO_BATCH_SIZE", b.micro_batch_size),
                assignment("GRAD_ACCUM_STEPS", b.grad_accum_steps),
                assignment("SEQ_LEN", b.seq_len),
                *_data_constants(spec, rel),
            ],
        ),
        *_evaluation_section(spec),
        (
            "Checkpoints.",
            [
                assignment("CHECKPOINT_DIR", rel(spec.checkpoint.dir)),
                assignment("SAVE_EVERY", spec.checkpoint.every_steps),
                assignment("KEEP_LAST", spec.checkpoint.keep_last),
                assignment("RESUME", _resume(spec.checkpoint.resume, script_dir)),
                *_prediction_constants(spec),
            ],
        ),
        (
            "Metrics: metrics.jsonl (and TensorBoard events) in CHECKPOINT_DIR; the memory report.",
            [assignment("MEMORY_SNAPSHOT", spec.memory.snapshot)],
        ),
    ]
    parts = choose_parts(spec)
    return {
        "version": __version__,
        "sections": sections,
        "parts": parts,
        "runtime_freezing": runtime_source("freezing"),
        "runtime_adapters": adapter_runtime(),
        "imports": imports_for(spec, parts),
        # Values the parts place; which parts there are is the recipe's decision.
        "hf": hf is not None,
        "auto_class": _AUTO_CLASSES[model.head],
        "classification": model.head == "sequence-classification",
        "weights": model.weights is not None,
        # How WEIGHTS as a folder loads: through from_pretrained, quantized or in full.
        "weights_load": _weights_load(spec),
        "autocast_dtype": {"fp16": "float16", "bf16": "bfloat16"}.get(spec.precision),
        "scaler": spec.precision == "fp16",
        "pure_bf16": spec.precision == "bf16-pure",
        "checkpointing": spec.checkpointing is not None,
        "compile": spec.compile,
        "optimizer_class": _OPTIMIZERS[o.name],
        "scheduler": spec.scheduler.name,
        "strategy_name": _STRATEGY_NAMES[spec.distributed.strategy],
        "adapter": spec.adapter is not None,
        "evaluation": spec.eval is not None,
        "plateau": uses_plateaus(spec),
        "keep_best": spec.checkpoint.keep_best,
        "early_stop": spec.train.early_stop is not None,
        "quantized": quantized(spec),
        "quantization_library": quantization_library(spec),
        # DDP leaves torchao's quantized weights alone (its broadcast cannot view them).
        "ddp_ignores_quantized": spec.distributed.strategy == "ddp"
        and quantization_library(spec) == "torchao",
        # How adapter.merge merges: into a dequantized copy of a quantized base, or in place.
        "merge": merge_kind(spec),
        # Quantized frozen blocks without an adapter (the rest trains fully).
        "quantized_frozen": quantized_frozen(spec),
        # A quantized base is decoded to fp32 for the merged weights, or, without an adapter,
        # for the final model.
        "dequantizes": merge_kind(spec) == "dequantized" or quantized_frozen(spec),
        # Checkpoints hold only what trains (recipe.trained_only).
        "trained_only": trained_only(spec),
        # File data: a streamed dataset, rows carrying position_ids (packed, or one text file
        # cut into rows), and packing (its start logs what packing does to attention).
        "streaming": spec.data.streaming,
        "position_ids": spec.data.packed_rows,
        "packing": spec.data.packing,
        "tensorboard": spec.logging.tensorboard,
    }


def _check_supported(spec: Spec) -> None:
    # Only torchao's refusals need the architecture (which linears it can quantize).
    torchao = quantization_library(spec) == "torchao" and spec.model.factory is None
    check_adapter_supported(spec, _architecture(spec) if torchao else None)
    consumers = [key for _, key in validation_consumers(spec)] if spec.eval is None else []
    if consumers:
        raise GenerateError(
            f"{' and '.join(consumers)} act on validation losses: add an eval section "
            "(freezegen lint: FG124)"
        )
    missing = missing_validation_data(spec)
    if missing is not None:
        raise GenerateError(f"{missing} (freezegen lint: FG125)")
    if spec.checkpointing is not None and spec.checkpointing.reentrant:
        raise GenerateError(
            "activation_checkpointing.reentrant: true is not generated: reentrant checkpointing "
            "drops gradients behind frozen inputs; set it to false"
        )
    check_data_supported(spec)
    if spec.data.format == "chat":
        problem = chat_template_problem(spec.data.tokenizer)
        if problem is not None:
            raise GenerateError(problem, ("data", "tokenizer"))


def _trigger(entry: UnfreezeStep) -> dict[str, Any]:
    """When a schedule entry thaws, as UNFREEZE says it: {"at_step": N} or {"plateau": ...}."""
    if entry.plateau is None:
        return {"at_step": entry.at_step}
    return {"plateau": entry.plateau.model_dump()}


def _evaluation_section(spec: Spec) -> list[tuple[str, list[str]]]:
    """The constants of evaluation, early stopping and the best checkpoint (no eval: none)."""
    ev = spec.eval
    if ev is None:
        return []
    early_stop = spec.train.early_stop
    return [
        (
            "Evaluation: validation loss on held-out data, the best checkpoint, early stopping.",
            [
                assignment("EVAL_EVERY", ev.every_steps),
                assignment("EVAL_BATCHES", ev.max_batches),
                assignment("EVAL_AT_START", ev.at_start),
                assignment("KEEP_BEST", spec.checkpoint.keep_best),
                assignment("EARLY_STOP", None if early_stop is None else early_stop.model_dump()),
            ],
        )
    ]


def _weights_load(spec: Spec) -> str | None:
    if spec.model.weights is None:
        return None
    return "quantized" if quantized(spec) else "full"


def _check_transformers_builds(model_type: str, head: str) -> None:
    """Refuse a model_type no family knows when transformers has no model with ``head`` for it:
    the script would only fail once it runs."""
    from transformers.models.auto import modeling_auto

    models = {
        "causal-lm": modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        "sequence-classification": modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    }[head]
    if model_type not in models:
        raise GenerateError(
            f"model_type {model_type!r}: this transformers has no {_AUTO_CLASSES[head]} for it, "
            "so the script could not build the model"
        )


def _num_layers(spec: Spec) -> int | None:
    arch = _architecture(spec)
    return None if arch is None else arch.num_layers


def _architecture(spec: Spec) -> Architecture | None:
    from freezegen.arch import architecture_for

    try:
        return architecture_for(spec.model)
    except UnknownArchitecture:
        return None  # transformers builds it; its depth is known once the script builds it
    except ArchitectureError as exc:
        raise GenerateError(str(exc)) from None


def _relative(path: Path, base: Path) -> str:
    path, base = Path(os.path.abspath(path)), Path(os.path.abspath(base))
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows: only an absolute path can say where
        return path.as_posix()


def _resume(resume: str, script_dir: Path) -> str:
    # Validation already resolved a path against the spec's folder (as every SpecPath is):
    # joining that folder again doubled it, and the result depended on the working directory.
    if resume in ("auto", "never"):
        return resume
    return _relative(Path(resume), script_dir)


def _module_kinds(spec: Spec) -> dict[str, list[str]] | None:
    """The module names per parameter kind of the spec's family; None for a factory model (the
    script then tells kinds by module-name heuristics)."""
    from freezegen.arch.families import family_of

    arch = _architecture(spec)
    if arch is None:
        return None
    return {kind: list(names) for kind, names in family_of(arch).modules.items()}


def _checkpoint_blocks(spec: Spec, num_layers: int | None) -> list[int] | dict[str, int] | None:
    ac = spec.checkpointing
    return None if ac is None else runtime_selection(ac, num_layers)


def _model_constants(spec: Spec, hf: Any, rel: Any) -> list[str]:
    model = spec.model
    lines = []
    if hf is not None:
        lines += [
            assignment("MODEL_TYPE", hf.model_type),
            assignment("MODEL_CONFIG", hf.config),
            assignment("ATTENTION", model.attention),
        ]
        if hf.pretrained is not None:
            lines.append(assignment("PRETRAINED", hf.pretrained))
    else:
        module, _, attr = model.factory.partition(":")
        lines += [assignment("MODEL_FACTORY", [module, attr])]
    lines.append(assignment("VOCAB_SIZE", hf.vocab_size if hf is not None else None))
    if model.weights is not None:
        lines.append(assignment("WEIGHTS", rel(model.weights)))
    if model.head == "sequence-classification":
        lines.append(assignment("NUM_LABELS", model.num_labels or 2))
    return lines


def _data_constants(spec: Spec, rel: Any) -> list[str]:
    d = spec.data
    if d.source == "synthetic":
        return []
    if d.source == "factory":
        module, _, attr = d.factory.partition(":")
        return [assignment("DATA_FACTORY", [module, attr])]
    arch = None if spec.model.factory is not None else _architecture(spec)
    return data_constants(spec, rel, None if arch is None else family_of(arch))


def _prediction_constants(spec: Spec) -> list[str]:
    """PREDICTED_PEAK_BYTES (what check_memory and the memory report compare against) and
    PREDICTED_BREAKDOWN (its parts, which ``--probe`` sets beside what it measures); None
    when freezegen cannot estimate the spec. The prediction is the run's peak: that of the
    most thawed state its schedule reaches, as lint budgets it."""
    from freezegen.memory import EstimateError
    from freezegen.memory.schedule import run_peak

    try:
        prediction = run_peak(spec)
    except EstimateError:
        peak, breakdown = None, None
    else:
        peak, breakdown = prediction.peak_bytes, prediction.to_json_dict()["breakdown"]
    return [
        assignment("PREDICTED_PEAK_BYTES", peak),
        assignment("PREDICTED_BREAKDOWN", breakdown),
    ]
