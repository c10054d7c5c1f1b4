"""A hand-written update: the step of a script that builds no optimizer.

pytorch/examples' regression trains with ``for param in fc.parameters():
param.data.add_(-0.1 * param.grad)`` after its backward call. That loop is the optimizer step:
it updates the parameters of one model (the one whose parameters it iterates) in place from their
gradients. So the freeze acts on that model, and gradient accumulation takes that loop once per
window, as it takes ``optimizer.step()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from freezegen.check.loops import has_modulo
from freezegen.check.names import dotted
from freezegen.codemod.script import CannotAct, Script, simple_statements, target_names

_IN_PLACE = ("add_", "sub_", "copy_", "addcdiv_", "addcmul_")
"""Tensor methods that write the tensor they are called on."""
HAND_STEP = "<update by hand>"
"""What the accumulation transform calls a hand-written update among the calls it classifies."""


@dataclass(frozen=True, eq=False)
class HandStep:
    """``for p in model.parameters(): p.data.add_(-lr * p.grad)`` and what it updates."""

    loop: cst.For
    model: str
    """The dotted name whose parameters the loop iterates and updates."""
    updates: tuple[cst.SimpleStatementLine, ...]
    """The statements in the loop that write a parameter from its gradient."""


def hand_steps(script: Script) -> list[HandStep]:
    """Every ``for`` loop over ``model.parameters()`` (or ``named_parameters()``) whose body
    writes the parameter in place from its ``.grad`` (``p.data.add_(p.grad, alpha=-lr)``,
    ``p -= lr * p.grad``, ``p.data = p.data - lr * p.grad``), in source order."""
    found = []
    for loop in script.loops:
        if not isinstance(loop, cst.For):
            continue
        it = loop.iter
        if not (
            isinstance(it, cst.Call)
            and isinstance(it.func, cst.Attribute)
            and it.func.attr.value in ("parameters", "named_parameters")
            and (model := dotted(it.func.value)) is not None
        ):
            continue
        names = target_names(loop.target)
        param = names[-1] if names else None
        if param is None:
            continue
        updates = tuple(
            line
            for line in simple_statements(loop.body)
            if any(_writes_from_grad(small, param) for small in line.body)
        )
        if updates:
            found.append(HandStep(loop, model, updates))
    return found


def sole_hand_step(script: Script) -> HandStep | None:
    """The hand-written update that is the script's step: the file builds no optimizer (none
    found, and nothing named like one is stepped) and updates one model by hand. None when the
    file has no such update or an optimizer may be the step. Raises CannotAct when it updates
    the parameters of two models by hand."""
    steps = hand_steps(script)
    if not steps or _steps_an_optimizer(script):
        return None
    models = list(dict.fromkeys(s.model for s in steps))
    if len(models) > 1:
        raise CannotAct(
            steps[1].loop,
            f"the script updates the parameters of {' and '.join(models)} by hand: the codemod "
            "rewrites scripts that train one model",
        )
    return steps[-1]


def _steps_an_optimizer(script: Script) -> bool:
    """True when the file builds an optimizer or steps something named like one."""
    try:
        _ = script.optimizer
    except CannotAct:
        return any(
            isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "step"
            and "opt" in (dotted(call.func.value) or "").lower()
            for call in script.calls
        )
    return True


def _writes_from_grad(small: cst.BaseSmallStatement, param: str) -> bool:
    """True when ``small`` writes ``param`` (or ``param.data``) in place with a value that
    reads ``param.grad``."""
    written = (param, f"{param}.data")
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
        func = small.value.func
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value in _IN_PLACE
            and dotted(func.value) in written
            and any(_reads_grad(a.value, param) for a in small.value.args)
        )
    if isinstance(small, cst.AugAssign):
        return dotted(small.target) in written and _reads_grad(small.value, param)
    if isinstance(small, cst.Assign):
        return any(dotted(t.target) == f"{param}.data" for t in small.targets) and _reads_grad(
            small.value, param
        )
    return False


def _reads_grad(expr: cst.BaseExpression, param: str) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            nonlocal found
            found = found or dotted(node) == f"{param}.grad"

    expr.visit(_Find())
    return found


def hand_step_guards(script: Script, loop: cst.For | cst.While) -> list[cst.If]:
    """The ``if`` statements of ``loop``'s body whose test takes a modulo and that hold the
    script's hand-written step (``if batch_idx % 4 == 0: for p in fc.parameters(): ...``): a
    window the script counts itself, as an optimizer step under that guard is."""
    step = sole_hand_step(script)
    if step is None:
        return []
    return [
        stmt
        for stmt in loop.body.body
        if isinstance(stmt, cst.If)
        and has_modulo(stmt.test)
        and any(script.inside(u, stmt.body) for u in step.updates)
    ]
