"""What one loop body does, in source order: its calls, its assignments and their guards.

Gradient accumulation shows up in a loop body as an ``if`` whose test uses ``%`` (``if (step + 1)
% accum == 0:``) around the optimizer step, or as ``if step % accum != 0: continue`` before it.
The rules about accumulation (FG503-FG505) and about step order (FG509) read the same facts, so
the walk happens once per loop and is cached on the file's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from freezegen.check.names import DottedName, dotted

Guard = cst.If | None


@dataclass(frozen=True, eq=False)
class Event(DottedName):
    """A call or an assignment inside a loop body."""

    node: cst.CSTNode
    """The Call, or the Assign / AugAssign statement."""
    name: str | None
    """The callee's dotted name (``optimizer.step``) or the assignment target (``loss``)."""
    guard: Guard
    """The innermost ``if ... % ...`` between the loop and this event, if any."""
    nested: bool
    """True inside a loop nested in this one."""
    value: cst.BaseExpression | None = None
    """The assigned value (Assign, AnnAssign) or the right operand (AugAssign)."""
    augmented: cst.BaseAugOp | None = None

    @property
    def is_call(self) -> bool:
        return isinstance(self.node, cst.Call)


def walk_loop(loop: cst.For | cst.While) -> list[Event]:
    """The events of ``loop``'s body (not its ``else``), nested function bodies left out."""
    out: list[Event] = []
    _block(_body(loop.body), None, False, out)
    return out


def has_modulo(expr: cst.CSTNode) -> bool:
    """True when ``expr`` contains a ``%`` operation."""
    finder = _ModuloFinder()
    expr.visit(finder)
    return finder.found


def modulo_operands(expr: cst.CSTNode) -> list[cst.BaseExpression]:
    """The right operands of every ``%`` in ``expr`` (the accumulation window, usually)."""
    finder = _ModuloFinder()
    expr.visit(finder)
    return finder.operands


class _ModuloFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False
        self.operands: list[cst.BaseExpression] = []

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Modulo):
            self.found = True
            self.operands.append(node.right)


class _CallFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _body(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return suite.body


def _calls(node: cst.CSTNode, guard: Guard, nested: bool, out: list[Event]) -> None:
    finder = _CallFinder()
    node.visit(finder)
    out.extend(Event(c, dotted(c.func), guard, nested) for c in finder.calls)


def _only_continue(stmt: cst.If) -> bool:
    body = stmt.body.body
    if stmt.orelse is not None or len(body) != 1:
        return False
    inner = body[0]
    if isinstance(inner, cst.SimpleStatementLine):
        return len(inner.body) == 1 and isinstance(inner.body[0], cst.Continue)
    return isinstance(inner, cst.Continue)


def _block(stmts: Sequence[cst.CSTNode], guard: Guard, nested: bool, out: list[Event]) -> None:
    for stmt in stmts:
        if isinstance(stmt, cst.If) and _only_continue(stmt) and has_modulo(stmt.test):
            _calls(stmt.test, guard, nested, out)
            guard = stmt  # the rest of this block runs on window boundaries only
            continue
        _statement(stmt, guard, nested, out)


def _statement(stmt: cst.CSTNode, guard: Guard, nested: bool, out: list[Event]) -> None:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return
    if isinstance(stmt, cst.If):
        _calls(stmt.test, guard, nested, out)
        _block(_body(stmt.body), stmt if has_modulo(stmt.test) else guard, nested, out)
        if isinstance(stmt.orelse, cst.If):
            _statement(stmt.orelse, guard, nested, out)
        elif stmt.orelse is not None:
            _block(_body(stmt.orelse.body), guard, nested, out)
    elif isinstance(stmt, (cst.For, cst.While)):
        _calls(stmt.iter if isinstance(stmt, cst.For) else stmt.test, guard, nested, out)
        _block(_body(stmt.body), guard, True, out)
        if stmt.orelse is not None:
            _block(_body(stmt.orelse.body), guard, True, out)
    elif isinstance(stmt, cst.With):
        for item in stmt.items:
            _calls(item.item, guard, nested, out)
        _block(_body(stmt.body), guard, nested, out)
    elif isinstance(stmt, (cst.Try, cst.TryStar)):
        _block(_body(stmt.body), guard, nested, out)
        for handler in stmt.handlers:
            _block(_body(handler.body), guard, nested, out)
        for part in (stmt.orelse, stmt.finalbody):
            if part is not None:
                _block(_body(part.body), guard, nested, out)
    elif isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            _small(small, guard, nested, out)
    elif isinstance(stmt, cst.BaseSmallStatement):
        _small(stmt, guard, nested, out)
    else:  # match statements and whatever Python adds next: calls only, in order
        _calls(stmt, guard, nested, out)


def _small(small: cst.CSTNode, guard: Guard, nested: bool, out: list[Event]) -> None:
    _calls(small, guard, nested, out)
    if isinstance(small, cst.Assign):
        for target in small.targets:
            out.append(Event(small, dotted(target.target), guard, nested, small.value))
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        out.append(Event(small, dotted(small.target), guard, nested, small.value))
    elif isinstance(small, cst.AugAssign):
        out.append(Event(small, dotted(small.target), guard, nested, small.value, small.operator))
