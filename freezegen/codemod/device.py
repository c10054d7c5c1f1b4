"""The device type that autocast and GradScaler are given: a string on every path.

``torch.amp.autocast(device_type, ...)`` raises ValueError for a ``torch.device`` and NameError
for a name some path leaves unbound, and autocast on the wrong device silently does nothing. So
a name from the script is used only when it is bound unconditionally before the statement
that needs it and every value it is given has a known kind (a string, or a ``torch.device``);
otherwise the type is read off the model's parameters, or written as a literal when the script
mentions one device only. When none of that holds the transform refuses.
"""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod.script import CannotAct, Script, simple_statements


def device_type(script: Script, at: cst.CSTNode, model: str | None) -> str:
    """A string expression for the device type (``"cuda"``, ``"cpu"``) valid at statement ``at``.

    Raises CannotAct when no such expression can be told from the script.
    """
    torch = script.names.local_for("torch") or "torch"
    function = script.function_of(at)
    for name, as_string, as_device in (
        ("device_type", "{}", "{}.type"),
        ("device", torch + ".device({}).type", "{}.type"),
    ):
        kind = _kind(script, name, at, function)
        if kind == "string":
            return as_string.format(name)
        if kind == "device":
            return as_device.format(name)
    if model is not None and script.visible(model.split(".", 1)[0], function):
        return f"next({model}.parameters()).device.type"
    text = script.module.code
    cuda = "cuda" in text
    if cuda and not any(word in text for word in ('"cpu"', "'cpu'", "is_available", "mps")):
        return '"cuda"'
    # a script that never mentions cuda may still put its tensors on a GPU by index or by a
    # device it is handed (.to(local_rank)): "cpu" only when nothing is moved anywhere
    if not cuda and not any(word in text for word in (".to(", ".cuda(", "device")):
        return '"cpu"'
    raise CannotAct(
        at,
        "cannot tell which device the model runs on (no `device` or `device_type` bound on "
        "every path, no model in view): name it in a `device = ...` line",
    )


def _kind(script: Script, name: str, at: cst.CSTNode, function: cst.FunctionDef | None) -> str:
    """``string`` or ``device`` when ``name`` is bound on every path to ``at`` and all its
    values are of that kind; empty otherwise."""
    values = _unconditional_values(script, name, at, function)
    if values is None:
        return ""
    kinds = {_value_kind(script, v) for v in values}
    return kinds.pop() if len(kinds) == 1 else ""


def _unconditional_values(
    script: Script, name: str, at: cst.CSTNode, function: cst.FunctionDef | None
) -> list[cst.BaseExpression] | None:
    """Every value ``name`` gets in the scope that ``at`` reads it from, when that scope
    assigns it at its top level (not under an ``if`` or ``try``) before ``at`` runs; None when
    some path may leave it unbound or give it a value of unknown kind (a parameter)."""
    scope: cst.Module | cst.FunctionDef = script.module
    ordered = function is None  # a module name read inside a function: bound when it runs
    if function is not None and name in script.bound_in(function):
        if any(p.name.value == name for p in function.params.params):
            return None
        scope, ordered = function, True
    block = scope.body if isinstance(scope, cst.Module) else scope.body.body
    top = next((s for s in block if s is at or script.inside(at, s)), None)
    bound = False
    for stmt in block:
        if ordered and stmt is top:
            break
        if isinstance(stmt, cst.SimpleStatementLine) and _assigns(stmt, name):
            bound = True
    if not bound:
        return None
    values: list[cst.BaseExpression] = []
    for stmt in _scope_statements(script, scope):
        for small in stmt.body:
            if isinstance(small, cst.Assign) and any(
                dotted(t.target) == name for t in small.targets
            ):
                values.append(small.value)
            elif isinstance(small, (cst.AugAssign, cst.AnnAssign)) and dotted(small.target) == name:
                return None
    return values


def _assigns(stmt: cst.SimpleStatementLine, name: str) -> bool:
    return any(
        isinstance(small, cst.Assign) and any(dotted(t.target) == name for t in small.targets)
        for small in stmt.body
    )


def _scope_statements(
    script: Script, scope: cst.Module | cst.FunctionDef
) -> list[cst.SimpleStatementLine]:
    """The simple statements of ``scope`` itself, not of functions or classes inside it."""
    return [
        s
        for s in simple_statements(scope)
        if script.function_of(s) is (None if isinstance(scope, cst.Module) else scope)
        and not any(isinstance(a, cst.ClassDef) for a in script.ancestors(s))
    ]


def _value_kind(script: Script, value: cst.BaseExpression) -> str:
    if isinstance(value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
        return "string"
    if isinstance(value, cst.IfExp):
        kinds = {_value_kind(script, value.body), _value_kind(script, value.orelse)}
        return kinds.pop() if len(kinds) == 1 else ""
    if isinstance(value, cst.Attribute) and value.attr.value == "type":
        return "string"
    if isinstance(value, cst.Attribute) and value.attr.value == "device":
        return "device"  # tensor.device, accelerator.device, model.device
    if isinstance(value, cst.Call):
        callee = script.names.qualified(value.func) or dotted(value.func) or ""
        if callee == "torch.device":
            return "device"
        if callee == "str":
            return "string"
    return ""
