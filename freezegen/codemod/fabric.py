"""Lightning Fabric, recognised by what built the object rather than by its name.

``fabric.backward(loss)`` looks like Accelerate's ``accelerator.backward(loss)``, but the two
need different edits (Fabric takes ``precision="bf16-mixed"`` and accumulates under
``fabric.no_backward_sync``). An object is a Fabric when the file builds it with
``Fabric(...)`` from ``lightning`` or ``lightning_fabric``, when it is a parameter annotated
with that class, or when it is a parameter every caller in the file hands a Fabric (``fabric``
passed down from ``main``, or ``fabric.launch(main, ...)``, which calls ``main(fabric, ...)``).
A name that merely reads ``fabric`` is not enough.

This module only reads the tree (``script.py`` asks it while classifying the backward call);
the edits live in :mod:`freezegen.codemod.fabric_edits`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from freezegen.check.names import dotted

if TYPE_CHECKING:
    from freezegen.codemod.script import Script

CLASSES = frozenset(
    [
        "lightning.Fabric",
        "lightning.fabric.Fabric",
        "lightning.fabric.fabric.Fabric",
        "lightning_fabric.Fabric",
        "lightning_fabric.fabric.Fabric",
    ]
)
"""The qualified names of Lightning Fabric's class (``L.Fabric`` after ``import lightning as
L`` too)."""
_DEPTH = 4
"""How many callers up a parameter is followed to the ``Fabric(...)`` that built it."""


def fabric_calls(script: Script) -> list[cst.Call]:
    """Every ``Fabric(...)`` call of the script, in source order (each branch's)."""
    return [call for call in script.calls if _is_class(script, call.func)]


def is_fabric(
    script: Script, expr: cst.BaseExpression, function: cst.FunctionDef | None, depth: int = 0
) -> bool:
    """True when ``expr`` (a name or ``self.name``), seen inside ``function``, holds a Fabric."""
    name = dotted(expr)
    if name is None or depth > _DEPTH:
        return False
    for target, call in script.names.constructed:
        if target == name and _is_class(script, call.func) and _same_scope(script, call, function):
            return True
    if function is None or "." in name:
        return False
    param = next((p for p in _params(function) if p.name.value == name), None)
    if param is None:
        return False
    if param.annotation is not None and _is_class(script, param.annotation.annotation):
        return True
    return _every_caller_passes_fabric(script, function, param, depth)


def _is_class(script: Script, node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.SimpleString):  # a string annotation: "Fabric", "L.Fabric"
        try:
            node = cst.parse_expression(str(node.evaluated_value))
        except cst.ParserSyntaxError:
            return False
    return script.names.qualified(node) in CLASSES


def _same_scope(script: Script, call: cst.Call, function: cst.FunctionDef | None) -> bool:
    """True when ``call`` runs in ``function`` or at module level (seen from everywhere), or,
    for ``self.x = Fabric(...)``, in a method of the class ``function`` belongs to."""
    home = script.function_of(call)
    if home is None or home is function:
        return True
    if function is None:
        return False
    return _class_of(script, home) is not None and _class_of(script, home) is _class_of(
        script, function
    )


def _class_of(script: Script, function: cst.FunctionDef) -> cst.ClassDef | None:
    parent = script.parents.get(id(function))
    if isinstance(parent, cst.IndentedBlock):
        parent = script.parents.get(id(parent))
    return parent if isinstance(parent, cst.ClassDef) else None


def _params(function: cst.FunctionDef) -> list[cst.Param]:
    p = function.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]


def _every_caller_passes_fabric(
    script: Script, function: cst.FunctionDef, param: cst.Param, depth: int
) -> bool:
    """True when the file calls ``function`` (a module-level function) at least once and
    every call hands ``param`` a Fabric; a call that cannot be matched to the parameter (a
    ``*args`` splat, a missing argument) makes it False."""
    if _class_of(script, function) is not None:
        return False  # a method: its callers go through objects the file may not build
    positional = [*function.params.posonly_params, *function.params.params]
    index = next((i for i, p in enumerate(positional) if p is param), None)
    calls = 0
    for call in script.calls:
        caller = script.function_of(call)
        if dotted(call.func) == function.name.value:
            arg = argument_for(call, param.name.value, index)
        elif _launches(script, call, function.name.value, caller, depth):
            if index != 0:
                return False
            calls += 1
            continue
        else:
            continue
        if arg is None or not is_fabric(script, arg, caller, depth + 1):
            return False
        calls += 1
    return calls > 0


def argument_for(call: cst.Call, name: str, index: int | None) -> cst.BaseExpression | None:
    """What ``call`` hands the parameter ``name`` (at positional ``index``); None when that
    cannot be told (a ``*args`` splat, a missing argument)."""
    if any(a.star for a in call.args):
        return None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    positional = [a.value for a in call.args if a.keyword is None]
    return positional[index] if index is not None and index < len(positional) else None


def _launches(
    script: Script, call: cst.Call, name: str, caller: cst.FunctionDef | None, depth: int
) -> bool:
    """True for ``fabric.launch(name, ...)``: Fabric calls ``name(fabric, ...)``."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value == "launch"
        and bool(call.args)
        and call.args[0].keyword is None
        and dotted(call.args[0].value) == name
        and is_fabric(script, func.value, caller, depth + 1)
    )


def receiver(back_call: cst.Call) -> cst.BaseExpression | None:
    """``fabric`` in ``fabric.backward(loss)``."""
    func = back_call.func
    return func.value if isinstance(func, cst.Attribute) else None
