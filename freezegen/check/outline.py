"""The pre-pass: what a file could be flagged for, read from the tree CPython's parser built.

The rules are libcst visitors, and libcst's parse, the rules' pass and locating their findings
cost about fifteen times CPython's parse of the same file, which the gate (:mod:`.gate`) has
already paid for. Most files that pass the text prefilter cannot be flagged by any rule: a
training script without a ``torch.load``, a clip next to a GradScaler or an optimizer step under
an ``if ... % ...`` has nothing for the rules to find. :class:`Outline` reads from the ``ast``
tree what the rules need to exist, and each rule's :meth:`~.rule.CheckRule.possible` says from
it whether it could fire at all; libcst only sees a file when one of them can.

The outline over-approximates, never under: names resolve exactly as the libcst walk resolves
them (:class:`.names.Imports`, :class:`.context.Roles`, the same statements in the same order),
and what narrows a rule further (paths through a function, where a loss is divided, suppression
comments) is left to the rule. So a rule the outline rules out could not have fired, and the
findings are the same with and without the pre-pass (tests/check/test_outline.py checks both
ways).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from freezegen.check.context import Roles
from freezegen.check.names import DottedName, Imports

Position = tuple[int, int]
"""Line and column (UTF-8 bytes, as ``ast`` counts) where a node starts."""
Span = tuple[Position, Position]
"""Where a run of statements starts and ends."""
Assignment = ast.Assign | ast.AnnAssign | ast.AugAssign

_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None: :func:`.names.dotted` for ``ast``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


@dataclass(frozen=True, eq=False)
class Call(DottedName):
    """One call of the file, with its callee as written and as imported."""

    node: ast.Call
    name: str | None
    """The callee's dotted name (``optimizer.step``), None when it is not a Name/Attribute."""
    qualified: str | None
    """The callee's qualified name when its first part is imported (``torch.load``)."""

    @property
    def attribute(self) -> str | None:
        """The attribute called (``backward`` in ``model(x).backward()``), whatever precedes."""
        func = self.node.func
        return func.attr if isinstance(func, ast.Attribute) else None

    @property
    def position(self) -> Position:
        return self.node.lineno, self.node.col_offset

    @property
    def star(self) -> bool:
        """True when ``*args`` or ``**kwargs`` could hide any argument."""
        return any(isinstance(a, ast.Starred) for a in self.node.args) or any(
            k.arg is None for k in self.node.keywords
        )

    def keyword(self, name: str) -> ast.expr | None:
        """The value of the ``name=...`` argument, or None."""
        return next((k.value for k in self.node.keywords if k.arg == name), None)

    def argument(self, index: int, name: str) -> ast.expr | None:
        """The positional argument at ``index`` (stars left out), else the ``name=`` one."""
        given = [a for a in self.node.args if not isinstance(a, ast.Starred)]
        return given[index] if len(given) > index else self.keyword(name)


class Outline(Roles):
    """What the rules may ask of a file before libcst: its calls, its loops and the statements
    under an ``if ... % ...``, and whether it may freeze parameters."""

    def __init__(self, tree: ast.Module) -> None:
        self.imports = Imports()
        self._constructed: list[tuple[str, str | None]] = []
        self._assignments: list[tuple[str, Span, Assignment]] = []
        self.loops: list[Span] = []
        """Every ``for`` and ``while`` statement, nested ones and those in functions too."""
        self._bodies: list[Span] = []
        """The loops' bodies: their calls are the loops' events (:mod:`.loops`)."""
        self._definitions: list[Span] = []
        """Function and class definitions: :mod:`.loops` does not look inside them."""
        self._apart: list[Span] = []
        """Where calls are no loop's events: definitions, lambdas, loops' ``else`` and targets,
        exception handlers' types."""
        self._windows: list[Span] = []
        """Statements that run only on some iterations of a loop, by a ``%`` test: the body of
        an ``if`` whose test holds ``%``, and what follows ``if ... % ...: continue``."""
        self._flattened = False
        """A ``match`` statement: :mod:`.loops` takes its calls as they come, so no outline."""
        self._statements(tree.body)
        self.calls: list[Call] = []
        self.may_freeze = False
        """False when no statement can set ``requires_grad`` to False (see :mod:`._freezing`):
        no ``x.requires_grad = v`` or ``x.requires_grad_(v)`` with ``v`` False, a name or ``not``
        a name."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = dotted(node.func)
                call = Call(node, name, self.imports.qualify(name))
                self.calls.append(call)
                if (name or "").endswith("requires_grad_"):
                    value = call.argument(0, "requires_grad")
                    self.may_freeze |= value is not None and _may_be_false(value)
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute) and t.attr == "requires_grad" for t in node.targets
            ):
                self.may_freeze |= _may_be_false(node.value)
            elif isinstance(node, ast.Lambda):
                self._apart.append(_span(node, node))

    def constructed_callees(self) -> Iterable[tuple[str, str]]:
        return ((target, self.imports.callee(name)) for target, name in self._constructed)

    def steps(self, *roles: str) -> list[Call]:
        """The ``x.step(...)`` calls whose receiver plays one of ``roles`` (see Roles.role)."""
        return [c for c in self.calls if c.method == "step" and self.role(c.receiver) in roles]

    def every_micro_step(self, call: Call) -> bool:
        """False when ``call`` cannot be an event of a loop that accumulates gradients
        (:attr:`.context.LoopFacts.accumulates`: it has optimizer steps of its own, each under
        a ``%`` test) that runs on every iteration of that loop (no ``%`` test around it)."""
        if self._flattened:
            return True
        loop = self._owner(call.position)
        return (
            loop is not None
            and loop in self._accumulating
            and not self._windowed(call.position, loop)
        )

    @cached_property
    def _accumulating(self) -> set[Span]:
        own: dict[Span, list[Call]] = {}
        for step in self.steps("optimizer", "scaler"):
            loop = self._owner(step.position)
            if loop is not None:
                own.setdefault(loop, []).append(step)
        return {
            loop
            for loop, steps in own.items()
            if all(self._windowed(s.position, loop) for s in steps)
        }

    def _owner(self, position: Position) -> Span | None:
        """The body of the loop whose events include a call at ``position``: the innermost
        loop around it, unless a definition, a lambda or a loop's ``else`` comes between."""
        around = [(span, True) for span in self._bodies if within(position, span)]
        around += [
            (span, False) for span in (*self._apart, *self._definitions) if within(position, span)
        ]
        if not around:
            return None
        # spans nest, so the innermost starts last; a definition first in a body is inside it
        span, is_loop = max(around, key=lambda pair: (pair[0][0], not pair[1]))
        return span if is_loop else None

    def assigned_before(self, name: str, call: Call) -> list[Assignment] | None:
        """The assignments to ``name`` among the events of the loop that owns ``call`` (its
        body, nested loops included, definitions not) that come before ``call``; None when the
        outline cannot tell (a ``match`` statement)."""
        loop = self._owner(call.position)
        if self._flattened:
            return None
        if loop is None:
            return []
        return [
            stmt
            for target, span, stmt in self._assignments
            if target == name
            and within(span[0], loop)
            and span[1] <= call.position
            and not any(within(span[0], d) and within(d[0], loop) for d in self._definitions)
        ]

    def _assigned(self, target: ast.expr, stmt: Assignment) -> None:
        """Record an assignment (an event of :mod:`.loops`) and, from a call, a construction."""
        key = dotted(target)
        if key is None:
            return
        self._assignments.append((key, _span(stmt, stmt), stmt))
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and isinstance(stmt.value, ast.Call):
            self._constructed.append((key, dotted(stmt.value.func)))

    def _windowed(self, position: Position, loop: Span) -> bool:
        """True when a ``%`` test inside ``loop`` guards the call at ``position``."""
        return any(within(w[0], loop) and within(position, w) for w in self._windows)

    def _statements(self, stmts: Sequence[ast.stmt]) -> None:
        """Every statement, in the order of :func:`.names.collect_names` (a statement, then the
        blocks inside it: body, else, finally, handlers, cases), so later imports win alike."""
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    self.imports.bind_import(alias.name, alias.asname)
            elif isinstance(stmt, ast.ImportFrom):
                if not stmt.level and stmt.module is not None and stmt.names[0].name != "*":
                    for alias in stmt.names:
                        self.imports.bind_from(stmt.module, alias.name, alias.asname)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    self._assigned(target, stmt)
            elif (isinstance(stmt, ast.AnnAssign) and stmt.value is not None) or isinstance(
                stmt, ast.AugAssign
            ):
                self._assigned(stmt.target, stmt)
            elif isinstance(stmt, _LOOPS):
                self.loops.append(_span(stmt, stmt))
                self._bodies.append(_span(stmt.body[0], stmt.body[-1]))
                if isinstance(stmt, (ast.For, ast.AsyncFor)):  # not walked by .loops
                    self._apart.append(_span(stmt.target, stmt.target))
                if stmt.orelse:
                    self._apart.append(_span(stmt.orelse[0], stmt.orelse[-1]))
            elif isinstance(stmt, _DEFINITIONS):
                self._definitions.append(
                    _span(stmt.decorator_list[0] if stmt.decorator_list else stmt, stmt)
                )
            elif isinstance(stmt, ast.If) and _has_modulo(stmt.test):
                self._windows.append(_span(stmt.body[0], stmt.body[-1]))
                if i + 1 < len(stmts) and _only_continue(stmt):
                    self._windows.append(_span(stmts[i + 1], stmts[-1]))
            elif isinstance(stmt, ast.Match):
                self._flattened = True
            elif isinstance(stmt, (ast.Try, ast.TryStar)):  # handlers' types: not walked either
                self._apart.extend(_span(h.type, h.type) for h in stmt.handlers if h.type)
            for block in _blocks(stmt):
                self._statements(block)


def within(position: Position, span: Span) -> bool:
    return span[0] <= position <= span[1]


def _blocks(stmt: ast.stmt) -> Iterable[list[ast.stmt]]:
    for attr in ("body", "orelse", "finalbody"):
        part = getattr(stmt, attr, None)
        if part:
            yield part
    for handler in getattr(stmt, "handlers", ()):
        yield handler.body
    for case in getattr(stmt, "cases", ()):
        yield case.body


def _span(first: ast.stmt | ast.expr, last: ast.stmt | ast.expr) -> Span:
    end = (last.end_lineno or last.lineno, last.end_col_offset or 0)
    return (first.lineno, first.col_offset), end


def _has_modulo(expr: ast.expr) -> bool:
    return any(
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) for node in ast.walk(expr)
    )


def _only_continue(stmt: ast.If) -> bool:
    return not stmt.orelse and len(stmt.body) == 1 and isinstance(stmt.body[0], ast.Continue)


def _may_be_false(value: ast.expr) -> bool:
    """``False``, a name (a helper's parameter, perhaps) or ``not`` a name."""
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
        value = value.operand
        return isinstance(value, ast.Name)
    return isinstance(value, ast.Name) or (isinstance(value, ast.Constant) and value.value is False)
