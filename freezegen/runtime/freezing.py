"""Which parameters of a built model a freeze selection names: one text for the trace and scripts.

This module imports nothing from freezegen: the traced estimator imports it, and every generated
script carries its source verbatim below the script's own imports
(:func:`freezegen.generate.runtime.inlined_source`), so a selection resolves by the same code
wherever it runs. A selection (``rules``) is data: ``embeddings`` (bool), ``blocks`` (block
indices, or ``{"last": N}`` / ``{"every": K}`` when the depth is known only once the model is
built), ``modules`` (kinds inside the blocks, None for all), ``patterns`` (name globs) and,
for freeze, ``except`` (globs never selected, applied last). ``kinds`` maps each parameter kind
to the module names of a known family (``Family.modules``); without it the kinds come from
module-name heuristics, for factory models and architectures freezegen does not know.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from torch import nn


def transformer_blocks(model: nn.Module) -> tuple[str, list[nn.Module]]:
    """Return the name and members of the repeated blocks: the model's longest ModuleList."""
    lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        return "", []
    name, blocks = max(lists, key=lambda item: len(item[1]))
    return name, list(blocks)


def module_kind(name: str, kinds: dict[str, list[str]]) -> str | None:
    """Return the kind whose module name (a dotted path) occurs in the parameter ``name``, the
    longest match winning; None when no module name occurs in it."""
    parts = name.split(".")
    best: tuple[int, str] | None = None
    for kind, modules in kinds.items():
        for module in modules:
            path = module.split(".")
            for i in range(len(parts) - len(path) + 1):
                if parts[i : i + len(path)] == path and (best is None or len(path) > best[0]):
                    best = (len(path), kind)
    return None if best is None else best[1]


def guessed_kind(name: str, in_block: str | None, embedding_modules: list[str]) -> str:
    """Return a parameter's kind from its module names, for a model of no known family.

    "embeddings" for nn.Embedding weights and everything under a module named "embeddings";
    inside a block (``in_block``: the parameter's name below the block) "norm", "attention" or
    "mlp" by its module names; "other" elsewhere.
    """
    owner = name.rpartition(".")[0]
    if any(owner == m or owner.startswith(m + ".") for m in embedding_modules):
        return "embeddings"
    if in_block is None:
        return "other"
    parts = in_block.lower().split(".")[:-1]
    if any("norm" in p or p == "ln" or p.startswith("ln_") for p in parts):
        return "norm"
    if any("attn" in p or "attention" in p for p in parts):
        return "attention"
    return "mlp"


def describe_parameters(
    model: nn.Module, blocks_name: str, kinds: dict[str, list[str]] | None = None
) -> dict[str, tuple[str, int | None]]:
    """Map each parameter name to (kind, block index); the block index is None outside the
    repeated blocks named ``blocks_name``. Kinds come from ``kinds`` when given (a parameter no
    module name matches is "other"), else from :func:`guessed_kind`."""
    embedding_modules = [
        name
        for name, m in model.named_modules()
        if name and (isinstance(m, nn.Embedding) or name.split(".")[-1] == "embeddings")
    ]
    described: dict[str, tuple[str, int | None]] = {}
    for name, _ in model.named_parameters():
        block, in_block = None, None
        if blocks_name and name.startswith(blocks_name + "."):
            index, _, in_block = name[len(blocks_name) + 1 :].partition(".")
            block = int(index)
        if kinds is None:
            kind = guessed_kind(name, in_block, embedding_modules)
        else:
            kind = module_kind(name, kinds) or "other"
        described[name] = (kind, block)
    return described


def block_indices(selection: list[int] | dict[str, int] | None, num_blocks: int) -> set[int]:
    """Resolve a block selection; {"last": N} and {"every": K} need the model's depth."""
    if selection is None:
        return set()
    if isinstance(selection, dict):
        if "last" in selection:
            return set(range(max(num_blocks - selection["last"], 0), num_blocks))
        return set(range(0, num_blocks, selection["every"]))
    return set(selection)


def select_parameters(
    model: nn.Module, rules: dict, kinds: dict[str, list[str]] | None = None
) -> set[str]:
    """Return the parameter names ``rules`` select: embeddings, then the blocks narrowed to
    modules, then name patterns; ``except`` patterns are applied last and always win. This is
    the order freezegen's linter resolves a spec's freeze section in."""
    blocks_name, blocks = transformer_blocks(model)
    chosen_blocks = block_indices(rules["blocks"], len(blocks))
    modules = rules["modules"]
    chosen = set()
    for name, (kind, block) in describe_parameters(model, blocks_name, kinds).items():
        if (
            (rules["embeddings"] and kind == "embeddings")
            or (block in chosen_blocks and (modules is None or kind in modules))
            or any(fnmatchcase(name, pattern) for pattern in rules["patterns"])
        ):
            chosen.add(name)
    kept = rules.get("except", [])
    return {name for name in chosen if not any(fnmatchcase(name, p) for p in kept)}


def set_train_mode(model: nn.Module) -> None:
    """Train mode, except Dropout and BatchNorm with nothing to train around them.

    In a block whose parameters are all frozen, dropout would only add noise to layers that do
    not learn and batch norm would drift its statistics; both stay in eval().
    """
    model.train()
    for block in transformer_blocks(model)[1]:
        if not any(p.requires_grad for p in block.parameters()):
            for m in block.modules():
                if isinstance(m, (nn.Dropout, nn.modules.batchnorm._BatchNorm)):
                    m.eval()
    for m in model.modules():
        params = list(m.parameters())
        is_norm = isinstance(m, nn.modules.batchnorm._BatchNorm)
        if is_norm and params and not any(p.requires_grad for p in params):
            m.eval()
