"""Which linears of a base model transformers quantizes, and what the whole quantized base holds.

transformers' bitsandbytes quantizers (``quantizers/quantizer_bnb_{4,8}bit.py``,
``integrations/bitsandbytes.py: replace_with_bnb_linear``) replace every module whose type is
exactly ``nn.Linear`` or GPT-2's ``Conv1D`` (transposed to (out, in) first), except the modules
``get_keys_to_not_convert`` names: the output embedding, tied weights and the module of the
model's *last parameter* (the name with ``.weight`` stripped, so a last ``*.bias`` spares
nothing: BERT's classification ``classifier`` is quantized). ``llm_int8_skip_modules``, when
given, replaces those defaults. Everything else (embeddings, norms, the head, mixture-of-experts
routers and fused 3-D expert weights, which are no ``nn.Linear``) stays in the dtype the model
was loaded in (``torch_dtype``; peft's ``prepare_model_for_kbit_training`` later casts those
to fp32, which ``dtype`` then says).

Pure Python (lint may import it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from freezegen.arch.family import Family
from freezegen.arch.params import ATTENTION, HEAD, MLP, Param
from freezegen.memory.quantized.storage import (
    Allocation,
    LinearFormat,
    bias_storage,
    linear_storage,
    shared_storage,
)

_LINEAR_KINDS = (ATTENTION, MLP, HEAD)


def quantized_linears(
    params: Sequence[Param], family: Family, skip: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Return each module transformers quantizes, by name, with its (out, in) shape.

    ``params``: the model's parameter table in ``named_parameters()`` order
    (:func:`freezegen.arch.params.parameter_table`); ``skip``: ``llm_int8_skip_modules``
    (None: transformers' defaults, see the module docstring).
    """
    if skip is None:
        skip = [params[-1].name.removesuffix(".weight")] if params else []
    router = family.block.router
    linears: dict[str, tuple[int, int]] = {}
    for p in params:
        module, leaf = p.name.rsplit(".", 1)
        if leaf != "weight" or len(p.shape) != 2 or p.kind not in _LINEAR_KINDS:
            continue
        if router is not None and p.block is not None and module.endswith(f".{router}"):
            continue  # a router module with a weight of its own, no nn.Linear
        if _skipped(module, skip):
            continue
        out, inp = p.shape
        if family.conv1d_blocks and p.block is not None:
            out, inp = inp, out
        linears[module] = (out, inp)
    return linears


def _skipped(module: str, patterns: Sequence[str]) -> bool:
    """transformers' ``should_convert_module``, negated: a pattern matches from the start up to
    a module boundary (as a regex), or as a suffix."""
    boundary = r"(?:(?<=\.)|(?=\.|$))"
    return any(re.match(rf"(?:{p}){boundary}", module) or module.endswith(p) for p in patterns)


def base_storage(
    params: Sequence[Param],
    family: Family,
    fmt: LinearFormat,
    dtype: str = "bfloat16",
    skip: Sequence[str] | None = None,
) -> list[Allocation]:
    """Return every tensor the quantized base holds, parameter by parameter, then the
    once-per-process ones.

    Quantized linears are listed as their format's tensors, owned by the module; every other
    parameter as "<kind> parameters" in ``dtype`` (the dtype the model was loaded in), owned
    by itself. :func:`~freezegen.memory.quantized.storage.explained` groups them for
    ``--explain``.
    """
    linears = quantized_linears(params, family, skip)
    tensors: list[Allocation] = []
    for p in params:
        module, leaf = p.name.rsplit(".", 1)
        shape = linears.get(module)
        if shape is None:
            why = f"not a quantized linear: kept in the model's dtype ({dtype})"
            tensors.append(Allocation(f"{p.kind} parameters", dtype, p.numel, why, p.name))
            continue
        own = (
            linear_storage(*shape, fmt)
            if leaf == "weight"
            else (bias_storage(shape[0], fmt, dtype),)
        )
        tensors += [replace(t, owner=module) for t in own]
    return tensors + list(shared_storage(fmt))
