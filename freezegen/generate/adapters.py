"""The adapter part of a script's context: what ``adapter`` and ``quantization`` put into it.

A spec with an ``adapter`` gets the ADAPTER constant (peft's LoRA settings and the selection
:mod:`freezegen.runtime.adapters` resolves in the script) and, with quantized weights,
QUANTIZATION (the keyword arguments of transformers' BitsAndBytesConfig, or of its TorchAoConfig
beside ``Int8WeightOnlyConfig()`` for ``quantization.library: torchao``, with the linears the
training plan of :mod:`freezegen.arch.training` keeps unquantized). A spec that quantizes
without an adapter gets QUANTIZATION alone: its frozen blocks' linears are stored quantized and
the rest trains fully. Also here: the source of the runtime modules the script carries; how
``adapter.merge`` merges; and the refusal of what a script cannot run yet (an adapter under
FSDP2 runs; a quantized base under FSDP2 does not).
"""

from __future__ import annotations

from typing import Any

from freezegen.arch.families import family_of
from freezegen.arch.params import parameter_table
from freezegen.arch.training import plan_training, unquantized_linears
from freezegen.generate.errors import GenerateError
from freezegen.generate.literals import assignment
from freezegen.generate.recipe import quantized
from freezegen.generate.runtime import runtime_requires, runtime_source
from freezegen.spec.models import Spec
from freezegen.spec.presets import Architecture
from freezegen.spec.selectors import runtime_selection

_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# What a quantized base weight is, by library: what FSDP2 would have to split.
_QUANTIZED_WEIGHTS = {
    "bitsandbytes": "bitsandbytes' packed Params4bit / Int8Params with their block constants "
    "or row scales",
    "torchao": "torchao's Int8Tensor with its per-row scales",
}


def check_adapter_supported(spec: Spec, arch: Architecture | None = None) -> None:
    """Raise GenerateError, with the setting to blame as its ``loc``, for the adapter and
    quantization combinations a script cannot run (yet): a script that ignored one would
    train something else than the spec says. ``arch``: the model's architecture when known
    (what a family's linears are decides whether torchao can quantize them)."""
    adapter = spec.adapter is not None
    refusals = [
        (
            adapter and spec.model.factory is not None,
            ("adapter",),
            "adapter: scripts that attach adapters to a model.factory model are not generated "
            "yet; use a Hugging Face model (preset, hf_config or pretrained)",
        ),
        (
            # Lint's FG118 says the same; this is for callers of the library API.
            not adapter and quantized(spec) and spec.model.factory is not None,
            ("quantization", "weights"),
            "quantization of a model.factory model: transformers quantizes the weights while "
            "it loads a model, and a factory model is built by your own code; use a Hugging "
            "Face model (preset, hf_config or pretrained) or drop the quantization section",
        ),
        (
            quantized(spec) and spec.distributed.strategy == "fsdp",
            ("distributed", "strategy"),
            "distributed.strategy: fsdp with a quantized base is not generated: FSDP2 shards "
            "each weight by splitting it along its first dimension, and a quantized weight "
            f"({_QUANTIZED_WEIGHTS[_library(spec)]}) carries quantization state that such a "
            "split does not shard with it, and freezegen's estimates do not model it either; "
            "use distributed.strategy: ddp (every rank holds the whole quantized base), or "
            "quantization.weights: none (LoRA over a full-precision base shards under FSDP2)",
        ),
        (
            quantized(spec) and spec.precision == "bf16-pure",
            ("precision",),
            "precision: bf16-pure with quantization: transformers cannot cast a quantized "
            "model to bf16; use precision: bf16 (autocast) and quantization.compute: bf16",
        ),
        (
            quantized(spec) and bool(spec.freeze.schedule),
            ("freeze", "schedule"),
            "freeze.schedule with quantization: quantized base weights cannot thaw and train; "
            "remove the schedule or set quantization.weights: none",
        ),
        (
            quantized(spec) and spec.compile,
            ("compile",),
            "compile with quantization is not generated yet: torch.compile over "
            f"{_library(spec)}'s quantized linears is untested here; set compile: false",
        ),
        (
            _library(spec) == "torchao" and arch is not None and family_of(arch).conv1d_blocks,
            ("quantization", "library"),
            "quantization.library: torchao quantizes nn.Linear weights only, and the linears "
            "in this model's blocks are transformers' Conv1D: nothing would be quantized; use "
            "library: bitsandbytes (it converts Conv1D)",
        ),
    ]
    for refused, loc, message in refusals:
        if refused:
            raise GenerateError(message, loc)


def adapter_section(
    spec: Spec, arch: Architecture | None, num_layers: int | None
) -> list[tuple[str, list[str]]]:
    """Return the script's ADAPTER and QUANTIZATION constants as a (comment, lines) section of
    the context: without an adapter, QUANTIZATION alone when the frozen blocks are stored
    quantized, or none. ``arch`` is None for an architecture no family knows."""
    adapter = spec.adapter
    if adapter is None:
        if not quantized(spec):
            return []
        return [
            (
                f"Quantization: the frozen blocks' linears, stored by {_library(spec)}.",
                [assignment("QUANTIZATION", _quantization_config(spec, arch))],
            )
        ]
    blocks = None if adapter.layers is None else runtime_selection(adapter, num_layers)
    lines = [
        assignment(
            "ADAPTER",
            {
                "r": adapter.r,
                "alpha": adapter.alpha,
                "dropout": adapter.dropout,
                "targets": adapter.targets,
                "blocks": blocks,
                "train": adapter.train,
            },
        )
    ]
    if quantized(spec):
        lines.append(assignment("QUANTIZATION", _quantization_config(spec, arch)))
    return [
        (
            "Adapter: LoRA (peft) beside the frozen base"
            + (f", whose linears are quantized ({_library(spec)})." if quantized(spec) else "."),
            lines,
        )
    ]


def quantization_library(spec: Spec) -> str | None:
    """Return the library that quantizes the script's base ("bitsandbytes" or "torchao"), or
    None when its base is not quantized."""
    return _library(spec) if quantized(spec) else None


def _library(spec: Spec) -> str:
    return spec.quantization.library if spec.quantization is not None else "bitsandbytes"


def merge_kind(spec: Spec) -> str | None:
    """Return how adapter.merge merges: "dequantized" (into a dequantized copy of a quantized
    base), "in place", or None without a merge."""
    if spec.adapter is None or not spec.adapter.merge:
        return None
    return "dequantized" if quantized(spec) else "in place"


def adapter_runtime() -> str:
    """Return the source an adapter script carries for runtime/adapters.py: the runtime modules it
    imports from, but freezing (the freeze part carries that), then its own."""
    modules = [m for m in runtime_requires("adapters") if m != "freezing"] + ["adapters"]
    return "\n\n".join(runtime_source(m) for m in modules)


def _quantization_config(spec: Spec, arch: Architecture | None) -> dict[str, Any]:
    """The keyword arguments of the quantization config of spec.quantization.library."""
    if _library(spec) == "torchao":
        return _torchao_config(spec, arch)
    return _bitsandbytes_config(spec, arch)


def _bitsandbytes_config(spec: Spec, arch: Architecture | None) -> dict[str, Any]:
    """The keyword arguments of transformers' BitsAndBytesConfig for spec.quantization."""
    q = spec.quantization
    assert q is not None
    if q.weights == "int8":
        # LLM.int8: bitsandbytes multiplies in the input's dtype; there is no compute dtype.
        config: dict[str, Any] = {"load_in_8bit": True}
    else:
        config = {
            "load_in_4bit": True,
            "bnb_4bit_quant_type": q.weights,
            "bnb_4bit_use_double_quant": q.double_quant,
            "bnb_4bit_compute_dtype": _DTYPES[q.compute],
        }
    skipped = _unquantized_linears(spec, arch)
    if skipped is not None:
        config["llm_int8_skip_modules"] = skipped
    return config


def _torchao_config(spec: Spec, arch: Architecture | None) -> dict[str, Any]:
    """The keyword arguments of transformers' TorchAoConfig beside its quant_type (the script
    passes torchao's ``Int8WeightOnlyConfig()``: int8 weights, one scale per output row)."""
    skipped = _unquantized_linears(spec, arch)
    return {} if skipped is None else {"modules_to_not_convert": skipped}


def _unquantized_linears(spec: Spec, arch: Architecture | None) -> list[str] | None:
    """The linears the training plan keeps in full precision (adapter.train's, the output
    head, everything outside the blocks: arch/training.py), which the quantizer must skip;
    None for an architecture no family knows (transformers' own default then skips the
    head)."""
    if arch is None:
        return None
    model = spec.model
    plan = plan_training(spec, arch, parameter_table(arch, model.head, model.num_labels or 2))
    return unquantized_linears(plan, arch, model.head)
