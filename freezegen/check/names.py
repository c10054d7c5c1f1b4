"""Name resolution without a scope analysis: what each imported name stands for.

A full ScopeProvider pass costs more than the parse itself, and training scripts import at the
top, so a walk over the statements (not the expressions) that records every ``import`` and
``from ... import`` in the file, at any depth, resolves ``amp.autocast`` after
``import torch.cuda.amp as amp`` and ``autocast`` after ``from torch.cuda.amp import autocast``.
Shadowing by a later assignment is not tracked. The same walk records ``x = Ctor(...)``
assignments, so rules know which names hold a GradScaler or an optimizer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst


def dotted(node: cst.BaseExpression | None) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None (calls, subscripts...)."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


SCALERS = ("GradScaler", "ShardedGradScaler")
"""The classes whose instances scale an fp16 loss (torch.amp's, and FSDP's sharded one)."""


class DottedName:
    """The two halves of a dotted callee name held in ``name`` (``optimizer.step``), for the
    call records of both trees (libcst's in :mod:`.loops`, ``ast``'s in :mod:`.outline`)."""

    name: str | None

    @property
    def receiver(self) -> str:
        """``optimizer`` for ``optimizer.step``; empty when the callee is a bare name."""
        return (self.name or "").rpartition(".")[0]

    @property
    def method(self) -> str:
        return (self.name or "").rpartition(".")[2]


@dataclass
class Imports:
    """Imported names of one module (local name -> qualified name) and the rules that bind and
    resolve them: one home for the libcst walk below and the ``ast`` outline
    (:mod:`freezegen.check.outline`), which must resolve every name the same way."""

    imports: dict[str, str] = field(default_factory=dict)

    def bind_import(self, full: str, asname: str | None) -> None:
        """Record ``import full`` (binds its first part) or ``import full as asname``."""
        if asname is not None:
            self.imports[asname] = full
        else:
            head = full.split(".", 1)[0]
            self.imports[head] = head

    def bind_from(self, module: str, name: str, asname: str | None) -> None:
        """Record ``from module import name [as asname]`` (absolute imports only)."""
        self.imports[asname or name] = f"{module}.{name}"

    def qualify(self, name: str | None) -> str | None:
        """The qualified name of dotted ``name`` whose first part is imported, else None."""
        if name is None:
            return None
        head, _, rest = name.partition(".")
        base = self.imports.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def callee(self, name: str | None) -> str:
        """What a call of dotted ``name`` is known as: qualified, else as written, else ''."""
        return self.qualify(name) or name or ""

    def local_for(self, qualified: str) -> str | None:
        """A local name bound to exactly ``qualified`` (e.g. the alias of ``torch``), or None."""
        return next((k for k, v in self.imports.items() if v == qualified), None)


@dataclass
class Names(Imports):
    """Imports and constructor assignments of one module."""

    constructed: list[tuple[str, cst.Call]] = field(default_factory=list)
    """(target, call) for every ``target = call(...)`` statement, target dotted."""

    def qualified(self, node: cst.BaseExpression) -> str | None:
        """The qualified name of a Name/Attribute chain whose base is imported, else None."""
        return self.qualify(dotted(node))

    def targets_of(self, *suffixes: str) -> set[str]:
        """Targets assigned from a call whose callee (qualified or dotted) ends with a suffix."""
        return {
            target
            for target, call in self.constructed
            if self.callee(dotted(call.func)).rsplit(".", 1)[-1] in suffixes
        }


def collect_names(module: cst.Module) -> Names:
    """Walk the statements of ``module`` (not its expressions) and return its :class:`Names`."""
    names = Names()
    for stmt in _statements(module.body):
        if isinstance(stmt, cst.SimpleStatementLine):
            smalls: tuple | list = stmt.body
        elif isinstance(stmt, cst.BaseSmallStatement):  # inside a one-line suite
            smalls = (stmt,)
        else:
            continue
        for small in smalls:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    names.bind_import(dotted(alias.name) or "", _asname(alias))
            elif isinstance(small, cst.ImportFrom):
                if (
                    small.relative
                    or small.module is None
                    or isinstance(small.names, cst.ImportStar)
                ):
                    continue
                module_name = dotted(small.module) or ""
                for alias in small.names:
                    name = dotted(alias.name)
                    if name:
                        names.bind_from(module_name, name, _asname(alias))
            elif isinstance(small, cst.Assign) and isinstance(small.value, cst.Call):
                for target in small.targets:
                    key = dotted(target.target)
                    if key:
                        names.constructed.append((key, small.value))
            elif (
                isinstance(small, cst.AnnAssign)
                and isinstance(small.value, cst.Call)
                and (key := dotted(small.target))
            ):
                names.constructed.append((key, small.value))
    return names


def _asname(alias: cst.ImportAlias) -> str | None:
    asname = alias.asname
    return asname.name.value if asname is not None and isinstance(asname.name, cst.Name) else None


def _statements(body: Iterator[cst.CSTNode] | tuple | list) -> Iterator[cst.CSTNode]:
    for stmt in body:
        yield stmt
        for block in _blocks(stmt):
            yield from _statements(block)


def _blocks(stmt: cst.CSTNode) -> Iterator[tuple | list]:
    """The statement lists directly inside a compound statement."""
    for attr in ("body", "orelse", "finalbody"):
        part = getattr(stmt, attr, None)
        if isinstance(part, (cst.IndentedBlock, cst.SimpleStatementSuite)):
            yield part.body
        elif isinstance(part, (cst.Else, cst.Finally)):
            yield part.body.body
        elif isinstance(part, cst.If):  # elif
            yield (part,)
    for handler in getattr(stmt, "handlers", ()):
        yield handler.body.body
    for case in getattr(stmt, "cases", ()):
        yield case.body.body
