"""Forward passes that run elsewhere and reach the loss through a list kept on the model.

Policy-gradient scripts (pytorch/examples' REINFORCE and actor-critic) run the model while they
act: ``select_action(state)`` computes ``probs = policy(state)`` and appends the action's
log-probability to ``policy.saved_log_probs``; at the episode's end ``finish_episode()`` builds
the loss from that list and calls backward. The statements that compute the loss run no forward
pass, so autocast there would do nothing. Autocast belongs around the model's calls whose
outputs flow into the loss: found by def-use, from the loss back to the model's attributes it
reads (``policy.saved_log_probs``), from the statements elsewhere that fill those attributes
back to the statements that call the model (``probs = policy(state)``). The other attributes the
loss reads (``policy.rewards``, filled from the environment) lead to no call of the model and
add nothing.
"""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod.script import Backward, Script, simple_statements, statement_targets

_FILLS = ("append", "extend", "insert", "appendleft", "extendleft")
"""Methods that put a value into the list (or deque) they are called on."""


def saved_forwards(script: Script, back: Backward, model: str | None) -> list[cst.BaseStatement]:
    """The statements, outside the function that computes the loss, that call ``model``
    directly and whose outputs reach the loss through an attribute of ``model``
    (``model.saved_actions``): the statements that fill that attribute, and those above them
    in their function whose results they read, in source order; empty when there are none
    (or no model)."""
    if model is None:
        return []
    function = back.function
    needed = _flow_into(script, function or script.module, _reads(back.loss), None)
    buffers = {name for name in needed if name.startswith(model + ".")}
    found: list[cst.BaseStatement] = []
    for line in simple_statements(script.module):
        if script.function_of(line) is function or not _fills(line) & buffers:
            continue
        home = script.function_of(line) or script.module
        reads = _flow_into(script, home, _reads(line), line)
        for stmt in simple_statements(home):
            if (
                script.line(stmt) <= script.line(line)
                and script.function_of(stmt) is script.function_of(line)
                and (stmt is line or statement_targets(stmt) & reads)
                and _calls(script, stmt, model)
                and all(stmt is not f for f in found)
            ):
                found.append(stmt)
    return sorted(found, key=script.line)


def _flow_into(
    script: Script,
    scope: cst.CSTNode,
    names: set[str],
    before: cst.CSTNode | None,
) -> set[str]:
    """``names`` and every dotted name they are computed from in ``scope`` (its statements
    that assign or fill one of them, and the ``for`` loops that bind one), to a fixed point;
    only statements above ``before`` when it is given."""
    own = scope if isinstance(scope, cst.FunctionDef) else None  # not a nested function's
    lines = [
        s
        for s in simple_statements(scope)
        if script.function_of(s) is own and (before is None or script.line(s) < script.line(before))
    ]
    loops = [
        loop
        for loop in script.loops
        if isinstance(loop, cst.For)
        and script.inside(loop, scope)
        and script.function_of(loop) is own
        and (before is None or script.line(loop) < script.line(before))
    ]
    needed = set(names)
    while True:
        grown = set(needed)
        for line in lines:
            if (statement_targets(line) | _fills(line)) & needed:
                grown |= _reads(line)
        for loop in loops:
            if _bound(loop.target) & needed:
                grown |= _reads(loop.iter)
        if grown == needed:
            return needed
        needed = grown


def _fills(line: cst.SimpleStatementLine) -> set[str]:
    """The dotted names ``line`` puts a value into (``policy.saved_log_probs.append(x)``)."""
    out = set()
    for small in line.body:
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            func = small.value.func
            if isinstance(func, cst.Attribute) and func.attr.value in _FILLS:
                name = dotted(func.value)
                if name is not None:
                    out.add(name)
    return out


def _bound(target: cst.BaseExpression) -> set[str]:
    found: set[str] = set()

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

    target.visit(_Find())
    return found


def _reads(node: cst.CSTNode) -> set[str]:
    """Every name and attribute chain ``node`` mentions (``policy.saved_log_probs`` and
    ``policy``)."""
    found: set[str] = set()

    class _Find(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

        def visit_Attribute(self, n: cst.Attribute) -> None:
            name = dotted(n)
            if name is not None:
                found.add(name)

    node.visit(_Find())
    return found


def _calls(script: Script, stmt: cst.CSTNode, model: str) -> bool:
    """True when ``stmt`` calls ``model`` itself (``policy(state)``), its forward pass."""
    return any(dotted(call.func) == model for call in script.calls_in(stmt))
