"""Which linears of a built model an adapter selection names, and which base parameters still train.

Like :mod:`freezegen.runtime.freezing`, this module imports nothing from freezegen but other
runtime modules (freezing's helpers, :mod:`~freezegen.runtime.names`' matching): the traced
estimator imports it, and a generated script carries its source verbatim after theirs
(:func:`freezegen.generate.runtime.runtime_requires`), so the
names peft's ``LoraConfig(target_modules=[...])`` receives come from the same code wherever it
runs. :mod:`freezegen.arch.adapters` states the same rule over a family's parameter table, for
lint; tests/arch/test_adapters.py proves the two agree for every family.

A selection (``rules``) is data: ``targets`` is ``"all-linear"`` or a list whose entries are
kinds (a key of ``kinds``, or one of :data:`GUESSED_KINDS` without it: the linears of that kind)
or module names (the linears whose dotted name ends with it at a dot boundary, as peft's list
semantics match: ``"q_proj"``, ``"mlp.down_proj"``); ``blocks`` is a block selection as
freezing's ``block_indices`` takes it, or None for every block. Only linears inside the
selected blocks are ever named.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn

from freezegen.runtime.freezing import block_indices, describe_parameters, transformer_blocks
from freezegen.runtime.names import ALL_LINEAR, name_matches

GUESSED_KINDS = ("embeddings", "norm", "attention", "mlp", "other")
"""The kinds :func:`freezegen.runtime.freezing.guessed_kind` gives, for a model of no known
family."""


def is_linear(module: nn.Module) -> bool:
    """Whether peft can put a LoRA adapter beside ``module``: an ``nn.Linear`` (bitsandbytes'
    quantized linears are subclasses) or transformers' ``Conv1D`` (GPT-2), known by its class
    name and 2-D weight so that a script without transformers need not import it."""
    if isinstance(module, nn.Linear):
        return True
    weight = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D" and isinstance(weight, nn.Parameter) and weight.dim() == 2
    )


def linear_features(module: nn.Module) -> tuple[int, int]:
    """Return (in_features, out_features) of a linear: ``nn.Linear`` stores its weight as
    (out, in), ``Conv1D`` as (in, out)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    rows, cols = module.weight.shape
    return rows, cols


def adapter_targets(
    model: nn.Module, rules: dict, kinds: dict[str, list[str]] | None = None
) -> list[str]:
    """Return the sorted full names (as ``model.named_modules()`` gives them) of the linears
    inside the selected blocks that ``rules["targets"]`` names: peft's ``target_modules``.

    A target that is a kind names the linears whose weight is of that kind (kinds from
    ``kinds``, else guessed, exactly as freezing describes parameters); any other target names
    the linears whose name ends with it. An empty list means nothing matched.
    """
    blocks_name, blocks = transformer_blocks(model)
    if rules["blocks"] is None:
        chosen = set(range(len(blocks)))
    else:
        chosen = block_indices(rules["blocks"], len(blocks))
    described = describe_parameters(model, blocks_name, kinds)
    kind_names = set(GUESSED_KINDS if kinds is None else kinds)
    targets = rules["targets"]
    named = []
    for name, module in model.named_modules():
        if not is_linear(module) or f"{name}.weight" not in described:
            continue
        kind, block = described[f"{name}.weight"]
        if block not in chosen:
            continue
        if targets == ALL_LINEAR or any(
            kind == target if target in kind_names else name_matches(name, target)
            for target in targets
        ):
            named.append(name)
    return sorted(named)


def trained_base_parameters(model: nn.Module, patterns: list[str]) -> list[str]:
    """Return the sorted names of ``model``'s parameters that a glob of ``patterns``
    (``adapter.train``) matches: the base parameters that still train, fully, beside the
    adapters; every other base parameter is frozen. Names are those of the model before peft
    wraps it."""
    return sorted(
        name
        for name, _ in model.named_parameters()
        if any(fnmatchcase(name, pattern) for pattern in patterns)
    )
