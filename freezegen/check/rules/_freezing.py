"""Does a file freeze parameters? Shared by the rules whose advice depends on it."""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.rules._calls import keyword, positional


def is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"


def freezes_in_call(node: cst.Call) -> bool:
    """``x.requires_grad_(False)`` (or ``requires_grad=False``)."""
    if not (dotted(node.func) or "").endswith("requires_grad_"):
        return False
    first = positional(node)[:1] or [keyword(node, "requires_grad")]
    return first[0] is not None and is_false(first[0].value)


def freezes_in_assign(node: cst.Assign) -> bool:
    """``p.requires_grad = False``."""
    return is_false(node.value) and any(
        isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad"
        for t in node.targets
    )
