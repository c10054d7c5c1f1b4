"""The freeze for an optimizer that trains several models: DreamBooth's
``itertools.chain(unet.parameters(), text_encoder.parameters()) if args.train_text_encoder else
unet.parameters()``.

A parameter's name is relative to its model (``down_blocks.0.resnets.0.conv1.weight`` in the
UNet, ``text_model.encoder.layers.0.mlp.fc1.weight`` in the text encoder), as in the one-model
freeze, so each pattern is matched in each model the optimizer trains on the path taken (the
conditional it is handed, read again). The run stops when no pattern matched in any of them,
and says how many parameters it froze in each, so that a pattern meant for one model and
matching in another shows at once.
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


def frozen_already(script: Script, several: SeveralModels, freeze: tuple[str, ...]) -> bool:
    """True when the freeze of :func:`freeze_each_code` is already there (idempotence)."""
    models = trained_models(script, several)
    return any(
        isinstance(loop, cst.For)
        and script.code(loop.iter) == models
        and patterns(freeze) in script.code(loop.body)
        for loop in script.loops
    )


def freeze_each_code(
    script: Script, several: SeveralModels, freeze: tuple[str, ...], drop: bool
) -> str:
    """The statements freezing ``freeze``'s patterns in each model the optimizer of
    ``several`` trains (:func:`trained_models`), to go above it; ``drop``: a frozen
    parameter's gradient is set to None too (a backward pass above left one)."""
    owners, anchor = several.owners, several.site.anchor
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
        f"for {model_name}, {module} in {trained_models(script, several)}:\n"
        f"    for {name}, {param} in {module}.named_parameters():\n"
        f"        if any(fnmatch.fnmatchcase({name}, pattern) for pattern in {patterns(freeze)}):\n"
        f"            {param}.requires_grad_(False)\n"
        + (f"            {param}.grad = None\n" if drop else "")
        + f"            {frozen}[{model_name}] += 1\n"
        f"if not any({frozen}.values()):\n"
        f"    raise ValueError({message})\n"
        f"print({json.dumps(f'--freeze {said}: parameters frozen per model')}, {frozen})\n"
    )


def trained_models(script: Script, several: SeveralModels) -> str:
    """The models the optimizer trains, as ``(name, model)`` pairs on each path: the
    conditional of what it is handed, kept, when its conditions read names alone
    (``(("unet", unet), ("text_encoder", text_encoder)) if args.train_text_encoder else
    (("unet", unet),)``: the condition is read again just above, nothing runs between), so the
    freeze acts and counts in the models trained on the path taken; every model otherwise."""
    return _paths(script, several.source) or _pairs(several.owners)


def _paths(script: Script, source: cst.BaseExpression) -> str | None:
    if not isinstance(source, cst.IfExp):
        owners = parameters_owners(source)
        return _pairs(owners) if owners else None
    if not _reads_only(source.test):
        return None
    body, orelse = _paths(script, source.body), _paths(script, source.orelse)
    if body is None or orelse is None:
        return None
    return f"{body} if {script.code(source.test)} else {orelse}"


def _reads_only(test: cst.BaseExpression) -> bool:
    """True when evaluating ``test`` again calls nothing and binds nothing."""
    found: list[cst.CSTNode] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.Call, cst.NamedExpr, cst.Await, cst.Yield, cst.Lambda)):
                found.append(node)
            return not found

    test.visit(_Find())
    return not found


def _pairs(owners: list[str]) -> str:
    pairs = [f"({json.dumps(o)}, {o})" for o in owners]
    return f"({pairs[0]},)" if len(pairs) == 1 else f"({', '.join(pairs)})"


def patterns(freeze: tuple[str, ...]) -> str:
    """The patterns as the freeze's code writes them: a tuple of string literals."""
    joined = ", ".join(json.dumps(p) for p in freeze)
    return f"({joined},)" if len(freeze) == 1 else f"({joined})"
