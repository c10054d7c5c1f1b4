"""The fp16 GradScaler: created where the optimizer it serves is created, so that it lives as
long as the optimizer does, and routed through backward, unscale_, step and update.

A scaler created inside a function called once per epoch starts each epoch from its initial
scale of 65536 and spends the first steps of every epoch skipping updates on overflow. So
when the training step lives in a function that is handed the optimizer, the scaler is built
next to the optimizer and handed over the same way (a keyword-only parameter); where that
cannot be done for every caller, the transform refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from freezegen.check.names import SCALERS, dotted
from freezegen.check.rules._calls import add_keyword
from freezegen.codemod import edits
from freezegen.codemod.device import device_type
from freezegen.codemod.script import Backward, CannotAct, Script
from freezegen.codemod.versions import too_old


@dataclass
class _Home:
    """Where the scaler is created, under which name, and the edits that hand it over."""

    name: str
    anchor: cst.CSTNode
    where: str
    """``after`` the optimizer's statement, or ``before`` the training loop."""
    handover: dict[int, edits.Replace] = field(default_factory=dict)


def has_scaler(script: Script) -> bool:
    return bool(script.names.targets_of(*SCALERS))


def add_scaler(
    script: Script, back: Backward, torch: str, changes: dict[int, edits.Replace]
) -> None:
    """Add scaler = GradScaler(...), scale(loss).backward(), unscale_, step and update to
    ``changes``; raises CannotAct when the step or the scaler's home cannot be told."""
    container = back.loop or back.function or script.module
    steps, clips = [], []
    for stmt in script.boundary_statements(container):
        call = stmt.body[0].value if isinstance(stmt.body[0], cst.Expr) else None
        name = dotted(call.func) if isinstance(call, cst.Call) else None
        if name is None:
            continue
        receiver, _, method = name.rpartition(".")
        if method == "step" and "sched" not in receiver.lower() and len(stmt.body) == 1:
            steps.append((stmt, receiver))
        elif method in ("clip_grad_norm_", "clip_grad_value_"):
            clips.append(stmt)
    if len(steps) != 1:
        raise CannotAct(
            back.call,
            f"found {len(steps)} optimizer.step() statements for this backward call; "
            "fp16 needs exactly one to route through the GradScaler",
        )
    if why := too_old(script.pins, "torch", "2.3", "torch.amp.GradScaler(device)"):
        raise CannotAct(back.call, why)
    step, optimizer = steps[0]
    home = _home(script, back)
    scaler = home.name
    device = device_type(script, home.anchor, script.trained_model)
    create = edits.statement(f"{scaler} = {torch}.amp.GradScaler({device})\n")
    if any(key in changes for key in home.handover):
        raise CannotAct(home.anchor, "the optimizer and the training step share a statement")
    changes.update(home.handover)
    changes[id(home.anchor)] = (
        edits.after([create]) if home.where == "after" else edits.before([create])
    )
    loss = script.code(back.loss)
    changes[id(back.stmt)] = lambda s: [
        s.with_changes(body=[cst.Expr(cst.parse_expression(f"{scaler}.scale({loss}).backward()"))])
    ]
    changes[id(step)] = lambda s: [
        s.with_changes(body=[cst.Expr(cst.parse_expression(f"{scaler}.step({optimizer})"))]),
        edits.statement(f"{scaler}.update()\n"),
    ]
    for clip in clips:
        changes[id(clip)] = edits.before([edits.statement(f"{scaler}.unscale_({optimizer})\n")])


def _home(script: Script, back: Backward) -> _Home:
    """Where the scaler lives: next to the optimizer, in the optimizer's scope."""
    try:
        site = script.optimizer
    except CannotAct:
        site = None
    step_function = back.function
    if site is None:
        if step_function is None:  # a module-level loop: the scaler lives as long as the script
            loop = next(
                (
                    a
                    for a in reversed(list(script.ancestors(back.stmt)))
                    if isinstance(a, (cst.For, cst.While))
                ),
                None,
            )
            if loop is not None:
                return _Home(script.fresh(("scaler",), None), loop, "before")
        raise CannotAct(
            back.call,
            "no optimizer construction found, so a GradScaler cannot be made to live as long "
            "as the optimizer",
        )
    optimizer_function = script.function_of(site.stmt)
    if optimizer_function is step_function:
        return _Home(script.fresh(("scaler",), step_function), site.stmt, "after")
    if site.target.startswith("self.") and step_function is not None:
        cls = next(
            (a for a in script.ancestors(step_function) if isinstance(a, cst.ClassDef)), None
        )
        if cls is not None and script.inside(site.stmt, cls):
            return _Home("self.scaler", site.stmt, "after")
    if optimizer_function is None and _module_level(script, step_function):
        # a global optimizer: a global scaler next to it is read by the step function
        return _Home(script.fresh(("scaler",), step_function), site.stmt, "after")
    return _handed_over(script, back, site.stmt, optimizer_function)


def _module_level(script: Script, function: cst.FunctionDef | None) -> bool:
    return function is not None and isinstance(script.parents.get(id(function)), cst.Module)


def _handed_over(
    script: Script,
    back: Backward,
    optimizer_stmt: cst.CSTNode,
    optimizer_function: cst.FunctionDef | None,
) -> _Home:
    """The scaler built after the optimizer and passed as a keyword-only parameter to the
    function holding the step, at every call; raises CannotAct where a call is out of reach."""
    step_function = back.function
    reason = (
        "the training step is in a function that does not build the optimizer; a GradScaler "
        "created there would restart from its initial scale at every call"
    )
    if optimizer_function is None or not _module_level(script, step_function):
        raise CannotAct(back.call, f"{reason}, and it cannot be handed one")
    assert step_function is not None
    name = step_function.name.value
    calls = [c for c in script.calls if isinstance(c.func, cst.Name) and c.func.value == name]
    if not calls or _references(script, name) != len(calls) + 1:
        raise CannotAct(
            step_function, f"{reason}, and `{name}` is not only called by name in this file"
        )
    outside = next((c for c in calls if not script.inside(c, optimizer_function)), None)
    if outside is not None or any(script.line(c) < script.line(optimizer_stmt) for c in calls):
        raise CannotAct(
            outside or calls[0],
            f"{reason}, and `{name}` is called where the optimizer is not built",
        )
    taken = script.bound_in(None) | script.bound_in(step_function)
    taken |= script.bound_in(optimizer_function)
    scaler = next(c for c in ("scaler", "grad_scaler", "fg_scaler") if c not in taken)
    handover: dict[int, edits.Replace] = {id(step_function): _add_parameter(scaler)}
    by_statement: dict[int, dict[int, cst.BaseExpression]] = {}
    for call in calls:
        stmt = script.statement_of(call)
        if stmt is None:
            raise CannotAct(call, f"{reason}, and this call of `{name}` cannot be edited")
        by_statement.setdefault(id(stmt), {})[id(call)] = add_keyword(call, scaler, scaler)
    for key, swaps in by_statement.items():
        handover[key] = edits.replace_calls(swaps)
    return _Home(scaler, optimizer_stmt, "after", handover)


def _add_parameter(name: str) -> edits.Replace:
    """An edit giving a function a keyword-only parameter ``name``."""

    def edit(function: cst.BaseStatement) -> list[cst.BaseStatement]:
        assert isinstance(function, cst.FunctionDef)
        params = function.params
        new = cst.Param(cst.Name(name))
        if isinstance(params.star_arg, (cst.Param, cst.ParamStar)):
            params = params.with_changes(kwonly_params=[*params.kwonly_params, new])
        else:
            params = params.with_changes(star_arg=cst.ParamStar(), kwonly_params=[new])
        return [function.with_changes(params=params)]

    return edit


def _references(script: Script, name: str) -> int:
    """How many times ``name`` is read or bound as a variable in the file (its definition
    included; attribute names such as ``model.train`` and keyword names are not variables)."""
    count = 0

    class _Count(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal count
            parent = script.parents.get(id(node))
            attribute = isinstance(parent, cst.Attribute) and parent.attr is node
            keyword = isinstance(parent, cst.Arg) and parent.keyword is node
            count += node.value == name and not attribute and not keyword

    script.module.visit(_Count())
    return count
