"""The freeze for an optimizer that trains several models: DreamBooth's
``itertools.chain(unet.parameters(), text_encoder.parameters()) if args.train_text_encoder else
unet.parameters()``.

A parameter's name is relative to its model (``down_blocks.0.resnets.0.conv1.weight`` in the
UNet, ``text_model.encoder.layers.0.mlp.fc1.weight`` in the text encoder), as in the one-model
freeze, so each pattern is matched in every model the optimizer may train, on any path. Freezing
a model on a path where the optimizer does not train it changes nothing that trains. The run
stops when no pattern matched in any model, and says how many parameters it froze in each, so
that a pattern meant for one model and matching in another shows at once.
"""

from __future__ import annotations

import json

import libcst as cst

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import dotted
from freezegen.codemod.placement import bound_on_every_path
from freezegen.codemod.script import (
    CannotAct,
    Script,
    SeveralModels,
    parameters_owners,
    says_optimizer,
)


def refuse_unsure_models(script: Script, several: SeveralModels) -> None:
    """Raise CannotAct when the models cannot all be frozen above the optimizer: another
    optimizer is built (a pattern would freeze in one model what another one trains), or one
    of the models is not bound on every path that reaches the optimizer."""
    site = several.site
    for target, call in script.names.constructed:
        callee = script.names.qualified(call.func) or dotted(call.func) or ""
        builds = callee.rpartition(".")[2] in OPTIMIZERS or parameters_owners(call)
        if target != site.target and says_optimizer(target) and builds:
            raise CannotAct(
                call,
                f"`{target}` is built here besides `{site.target}`, which trains "
                f"{' and '.join(several.owners)}: the codemod freezes several models only "
                "when one optimizer trains them",
            )
    for owner in several.owners:
        if not bound_on_every_path(script, owner.split(".", 1)[0], site.anchor):
            raise CannotAct(
                site.call,
                f"this optimizer trains {' and '.join(several.owners)}, and `{owner}` is not "
                f"bound on every path above line {script.line(site.anchor)}, where each model "
                "would be frozen",
            )


def frozen_already(script: Script, owners: list[str], freeze: tuple[str, ...]) -> bool:
    """True when the freeze of :func:`freeze_each_code` is already there (idempotence)."""
    models = _models(owners)
    return any(
        isinstance(loop, cst.For)
        and script.code(loop.iter) == models
        and patterns(freeze) in script.code(loop.body)
        for loop in script.loops
    )


def freeze_each_code(
    script: Script,
    anchor: cst.BaseStatement,
    owners: list[str],
    freeze: tuple[str, ...],
    drop: bool,
) -> str:
    """The statements freezing ``freeze``'s patterns in each of ``owners``, to go above
    ``anchor``; ``drop``: a frozen parameter's gradient is set to None too (a backward pass
    above left one)."""
    function = script.function_of(anchor)
    model_name = script.fresh(("model_name",), function)
    module = script.fresh(("module",), function)
    name = script.fresh(("param_name",), function)
    param = script.fresh(("param",), function)
    frozen = script.fresh(("frozen",), function)
    said = ", ".join(freeze)
    counts = "{" + ", ".join(f"{json.dumps(o)}: 0" for o in owners) + "}"
    message = json.dumps(f"--freeze {said} matched no parameter of {' or '.join(owners)}")
    return (
        f"{frozen} = {counts}\n"
        f"for {model_name}, {module} in {_models(owners)}:\n"
        f"    for {name}, {param} in {module}.named_parameters():\n"
        f"        if any(fnmatch.fnmatchcase({name}, pattern) for pattern in {patterns(freeze)}):\n"
        f"            {param}.requires_grad_(False)\n"
        + (f"            {param}.grad = None\n" if drop else "")
        + f"            {frozen}[{model_name}] += 1\n"
        f"if not any({frozen}.values()):\n"
        f"    raise ValueError({message})\n"
        f"print({json.dumps(f'--freeze {said}: parameters frozen per model')}, {frozen})\n"
    )


def _models(owners: list[str]) -> str:
    return "(" + ", ".join(f"({json.dumps(o)}, {o})" for o in owners) + ")"


def patterns(freeze: tuple[str, ...]) -> str:
    """The patterns as the freeze's code writes them: a tuple of string literals."""
    joined = ", ".join(json.dumps(p) for p in freeze)
    return f"({joined},)" if len(freeze) == 1 else f"({joined})"
