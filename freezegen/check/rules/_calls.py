"""Reading and editing call arguments, keeping the call's own layout."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    """The ``name=...`` argument of ``call``, or None."""
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def has_star(call: cst.Call) -> bool:
    """True when ``*args`` or ``**kwargs`` could hide any argument."""
    return any(a.star for a in call.args)


def positional(call: cst.Call) -> list[cst.Arg]:
    return [a for a in call.args if a.keyword is None and not a.star]


def _comma_like(call: cst.Call) -> cst.Comma | None:
    """A comma laid out like the call's others (a line break per argument, or none)."""
    commas = [a.comma for a in call.args[:-1] if isinstance(a.comma, cst.Comma)]
    if commas:
        return commas[0]
    if isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=call.whitespace_before_args)
    return None


def add_keyword(call: cst.Call, name: str, value: str) -> cst.Call:
    """``call`` with ``name=value`` appended (after a trailing comma, on its own line)."""
    arg = cst.Arg(
        keyword=cst.Name(name),
        value=cst.parse_expression(value),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    if not call.args:
        return call.with_changes(args=[arg])
    *rest, last = call.args
    if isinstance(last.comma, cst.Comma):  # trailing comma: the new argument keeps it
        between = _comma_like(call) or cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        return call.with_changes(
            args=[*rest, last.with_changes(comma=between), arg.with_changes(comma=last.comma)]
        )
    return call.with_changes(args=[*call.args, arg])


def insert_first(call: cst.Call, value: str) -> cst.Call:
    """``call`` with the positional argument ``value`` put first."""
    arg = cst.Arg(value=cst.parse_expression(value))
    if call.args and isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        arg = arg.with_changes(comma=cst.Comma(whitespace_after=call.whitespace_before_args))
    return call.with_changes(args=[arg, *call.args])


def keyword_fix(name: str, value: str) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """A fix that appends ``name=value`` to the call it is given."""

    def fix(call: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(call, cst.Call)
        return add_keyword(call, name, value)

    return fix
