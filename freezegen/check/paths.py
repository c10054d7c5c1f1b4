"""Walk a function body path by path, keeping apart the paths that a flag's branches separate.

Training code switches AMP on and off with a flag: ``if self.scaler: ... else: ...``, ``if
args.amp:``, ``if scaler is not None:``, often in several ``if`` statements on the same flag. A
rule that looks at the whole function at once mixes the AMP path with the plain one (a clip in
the ``else:`` branch seems to follow ``scaler.scale``). :func:`walk_paths` runs a rule's
``transfer`` over the calls of each path instead, in source order, and returns the value every
path ends with.

A path remembers which way it took each flag test (a name or attribute chain, possibly negated,
compared ``is None``/``is not None`` or ``== constant``, joined by ``and``/``or``), so a later
test on the same flag follows the same way; assigning to the flag forgets it. Other tests split
the path without remembering anything. Loops run their body until nothing new comes out (at most
:data:`MAX_ROUNDS` times); ``return``/``raise`` end a path, ``break``/``continue`` go where they
go. Nested function and class bodies are not walked (they run elsewhere). After each statement
the paths that reached the same value merge, keeping the flags they agree on: there are never
more paths than distinct values, so a rule whose values are few (a handful of booleans) keeps
the walk small whatever the number of ``if`` statements; what merging loses is the correlation
between two flags that changed nothing yet (``a`` and ``b`` both true on one path and both false
on the other become any mix).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from typing import TypeVar

import libcst as cst

from freezegen.check.names import dotted

V = TypeVar("V", bound=Hashable)
Transfer = Callable[[V, cst.Call], V]
Fact = tuple[str, str, bool]
"""(subject, test, outcome): ``("args.amp", "", True)``, ``("mode", "== 'fp16'", False)``."""

MAX_ROUNDS = 3


@dataclass(frozen=True)
class _Path:
    facts: frozenset[Fact]
    value: Hashable


@dataclass
class _Loop:
    breaks: set[_Path] = field(default_factory=set)
    continues: set[_Path] = field(default_factory=set)


def walk_paths(body: Sequence[cst.CSTNode], initial: V, transfer: Transfer[V]) -> set[V]:
    """The values the paths through ``body`` end with, starting from ``initial``; ``transfer``
    gives the value after one call (called on every call of the path, in source order)."""
    walker = _Walker(transfer)
    ends = walker.block(body, {_Path(frozenset(), initial)})
    return {p.value for p in ends | walker.exits}  # type: ignore[misc]


def facts_of(test: cst.BaseExpression, outcome: bool) -> list[Fact]:
    """What ``test`` evaluating to ``outcome`` says about flags (empty when nothing)."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return facts_of(test.expression, not outcome)
    if isinstance(test, cst.BooleanOperation):
        both = isinstance(test.operator, cst.And) == outcome  # and-true, or-false: both hold
        return facts_of(test.left, outcome) + facts_of(test.right, outcome) if both else []
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        (target,) = test.comparisons
        subject, op = dotted(test.left), target.operator
        if subject is None:
            return []
        if isinstance(target.comparator, cst.Name) and target.comparator.value == "None":
            if isinstance(op, cst.IsNot):
                return [(subject, "", outcome)]  # a scaler object is truthy: same fact as `if x`
            if isinstance(op, cst.Is):
                return [(subject, "", not outcome)]
        if isinstance(op, (cst.Equal, cst.NotEqual)) and isinstance(
            target.comparator, (cst.SimpleString, cst.Integer, cst.Name)
        ):
            constant = cst.Module([]).code_for_node(target.comparator)
            return [(subject, f"== {constant}", outcome == isinstance(op, cst.Equal))]
        return []
    subject = dotted(test)
    return [] if subject is None else [(subject, "", outcome)]


class _Walker:
    def __init__(self, transfer: Transfer) -> None:
        self.transfer = transfer
        self.exits: set[_Path] = set()
        self.loops: list[_Loop] = []
        self._calls: dict[int, list[cst.Call]] = {}  # loop bodies are walked more than once

    def block(self, stmts: Iterable[cst.CSTNode], paths: set[_Path]) -> set[_Path]:
        for stmt in stmts:
            if not paths:
                break
            paths = _merged(self.statement(stmt, paths))
        return paths

    def calls(self, node: cst.CSTNode | None, paths: set[_Path]) -> set[_Path]:
        if node is None:
            return paths
        calls = self._calls.get(id(node))
        if calls is None:
            calls = self._calls[id(node)] = list(_calls_in(node))
        for call in calls:
            paths = {_Path(p.facts, self.transfer(p.value, call)) for p in paths}
        return paths

    def statement(self, stmt: cst.CSTNode, paths: set[_Path]) -> set[_Path]:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            return paths
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                paths = self.small(small, paths)
            return paths
        if isinstance(stmt, cst.BaseSmallStatement):
            return self.small(stmt, paths)
        if isinstance(stmt, cst.If):
            return self.branch(stmt, paths)
        if isinstance(stmt, (cst.For, cst.While)):
            return self.loop(stmt, paths)
        if isinstance(stmt, cst.With):
            for item in stmt.items:
                paths = self.calls(item.item, paths)
            return self.block(stmt.body.body, paths)
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            done = self.block(stmt.body.body, paths)
            caught = set()
            for handler in stmt.handlers:  # an exception may come before or after the body's work
                caught |= self.block(handler.body.body, paths | done)
            if stmt.orelse is not None:
                done = self.block(stmt.orelse.body.body, done)
            paths = done | caught
            return self.block(stmt.finalbody.body.body, paths) if stmt.finalbody else paths
        if isinstance(stmt, cst.Match):
            paths = self.calls(stmt.subject, paths)
            out = set(paths)
            for case in stmt.cases:
                out |= self.block(case.body.body, paths)
            return out
        return self.calls(stmt, paths)

    def small(self, small: cst.BaseSmallStatement, paths: set[_Path]) -> set[_Path]:
        paths = self.calls(small, paths)
        if isinstance(small, (cst.Return, cst.Raise)):
            self.exits |= paths
            return set()
        if isinstance(small, (cst.Break, cst.Continue)) and self.loops:
            loop = self.loops[-1]
            (loop.breaks if isinstance(small, cst.Break) else loop.continues).update(paths)
            return set()
        targets: list[cst.BaseExpression] = []
        if isinstance(small, cst.Assign):
            targets = [t.target for t in small.targets]
        elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
            targets = [small.target]
        assigned = {dotted(t) for t in targets} - {None}
        if assigned:  # the flag may now hold anything
            paths = {
                _Path(frozenset(f for f in p.facts if f[0] not in assigned), p.value) for p in paths
            }
        return paths

    def branch(self, stmt: cst.If, paths: set[_Path]) -> set[_Path]:
        paths = self.calls(stmt.test, paths)
        taken, skipped = _split(paths, stmt.test)
        out = self.block(stmt.body.body, taken)
        if isinstance(stmt.orelse, cst.If):
            return out | self.branch(stmt.orelse, skipped)
        if stmt.orelse is not None:
            return out | self.block(stmt.orelse.body.body, skipped)
        return out | skipped

    def loop(self, stmt: cst.For | cst.While, paths: set[_Path]) -> set[_Path]:
        test = stmt.test if isinstance(stmt, cst.While) else None
        paths = self.calls(stmt.iter if isinstance(stmt, cst.For) else test, paths)
        frame = _Loop()
        self.loops.append(frame)
        heads, new = set(paths), set(paths)
        for _ in range(MAX_ROUNDS):
            out = self.block(stmt.body.body, new) | frame.continues
            frame.continues = set()
            new = out - heads
            heads = _merged(heads | new)
            if not new:
                break
        self.loops.pop()
        endless = isinstance(test, cst.Name) and test.value == "True"
        done = set() if endless else heads
        if stmt.orelse is not None:
            done = self.block(stmt.orelse.body.body, done)
        return done | frame.breaks


def _split(paths: set[_Path], test: cst.BaseExpression) -> tuple[set[_Path], set[_Path]]:
    """The paths that may take the ``if`` (with what that tells) and those that may skip it."""
    out: tuple[set[_Path], set[_Path]] = (set(), set())
    for outcome, into in ((True, out[0]), (False, out[1])):
        known = facts_of(test, outcome)
        for p in paths:
            if any((subject, kind, not value) in p.facts for subject, kind, value in known):
                continue  # this path took the other way on the same flag
            into.add(_Path(p.facts | frozenset(known), p.value))
    return out


def _merged(paths: set[_Path]) -> set[_Path]:
    """One path per value, knowing the flags that all paths with that value agree on."""
    facts: dict[Hashable, frozenset[Fact]] = {}
    for p in paths:
        facts[p.value] = facts[p.value] & p.facts if p.value in facts else p.facts
    return {_Path(known, value) for value, known in facts.items()}


def _calls_in(node: cst.CSTNode) -> Iterator[cst.Call]:
    """The calls in ``node``, outer before inner and left to right (roughly evaluation order),
    not those in lambdas or nested definitions. Reads the node's fields directly: a libcst
    visitor rebuilds every node it passes, which made this walk cost more than the parse."""
    if isinstance(node, (cst.Lambda, cst.FunctionDef, cst.ClassDef)):
        return
    if isinstance(node, cst.Call):
        yield node
    for name in _child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield from _calls_in(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield from _calls_in(item)


@cache
def _child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that may hold nodes (whitespace and tokens cannot hold a call)."""
    return tuple(
        f.name
        for f in fields(kind)
        if not f.name.startswith(("whitespace", "lpar", "rpar", "comma", "semicolon"))
    )
