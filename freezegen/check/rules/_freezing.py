"""Does a file freeze parameters? Shared by the rules whose advice depends on it.

A file freezes when it sets ``requires_grad`` to False anywhere (``p.requires_grad = False``,
``m.requires_grad_(False)``), or when it calls a function of its own that sets
``requires_grad`` from one of its parameters and the call makes that False: ``def
set_requires_grad(module, flag): ... p.requires_grad = flag`` called as
``set_requires_grad(model.encoder, False)``, ``def freeze(m, frozen=True): m.requires_grad_(not
frozen)`` called as ``freeze(model.encoder)``. Helpers are followed one level (a helper calling
another helper with its own parameter is not), by name: a plain function called by its name, a
method called as ``self.name(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.rules._calls import has_star, keyword, positional


def is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


@dataclass
class _Helper:
    """A function of the file that sets requires_grad from its parameter ``flag``."""

    params: list[cst.Param]
    method: bool
    flags: set[tuple[str, bool]] = field(default_factory=set)
    """(parameter, negated): ``requires_grad = flag`` or ``requires_grad = not flag``."""


class FreezeTracker:
    """Fed a file's definitions, assignments and calls by a rule, in visiting order; then
    :attr:`freezes` says whether the file freezes parameters (see the module)."""

    def __init__(self) -> None:
        self._literal = False
        self._functions: list[tuple[str, _Helper]] = []
        self._helpers: dict[str, list[_Helper]] = {}
        self._calls: list[tuple[str, bool, cst.Call]] = []

    def enter(self, node: cst.FunctionDef) -> None:
        params = [*node.params.posonly_params, *node.params.params]
        method = bool(params) and params[0].name.value in ("self", "cls")
        self._functions.append((node.name.value, _Helper(params, method)))

    def leave(self) -> None:
        name, helper = self._functions.pop()
        if helper.flags:
            self._helpers.setdefault(name, []).append(helper)

    def assign(self, node: cst.Assign) -> None:
        if _sets_requires_grad(node):
            self._value(node.value)

    def call(self, node: cst.Call) -> None:
        value = _requires_grad_argument(node)
        if value is not None:
            self._value(value)
        elif isinstance(node.func, cst.Name):
            self._calls.append((node.func.value, False, node))
        elif dotted(node.func) in (f"self.{_attr(node)}", f"cls.{_attr(node)}"):
            self._calls.append((_attr(node), True, node))

    @property
    def freezes(self) -> bool:
        return self._literal or any(
            helper.method == method and _makes_false(helper, call)
            for name, method, call in self._calls
            for helper in self._helpers.get(name, ())
        )

    def _value(self, value: cst.BaseExpression) -> None:
        """Record what ``requires_grad`` is set to, in the function being visited."""
        if is_false(value):
            self._literal = True
            return
        negated = isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Not)
        name = value.expression if negated else value
        if self._functions and isinstance(name, cst.Name):
            helper = self._functions[-1][1]
            if any(p.name.value == name.value for p in helper.params):
                helper.flags.add((name.value, negated))


def _makes_false(helper: _Helper, call: cst.Call) -> bool:
    """True when ``call`` binds one of the helper's flags so that requires_grad is False."""
    if has_star(call):
        return False
    params = helper.params[1:] if helper.method else helper.params
    names = [p.name.value for p in params]
    given = positional(call)
    for flag, negated in helper.flags:
        if flag not in names:  # a method's own self or cls
            continue
        index = names.index(flag)
        if index < len(given):
            value = given[index].value
        elif (arg := keyword(call, flag)) is not None:
            value = arg.value
        else:
            value = params[index].default
        if isinstance(value, cst.Name) and value.value == ("True" if negated else "False"):
            return True
    return False


def _attr(node: cst.Call) -> str:
    return node.func.attr.value if isinstance(node.func, cst.Attribute) else ""


def _sets_requires_grad(node: cst.Assign) -> bool:
    return any(
        isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad"
        for t in node.targets
    )


def _requires_grad_argument(node: cst.Call) -> cst.BaseExpression | None:
    """The value of ``x.requires_grad_(value)``, or None for any other call."""
    if not (dotted(node.func) or "").endswith("requires_grad_"):
        return None
    first = positional(node)[:1] or [keyword(node, "requires_grad")]
    return first[0].value if first[0] is not None else None
