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


@dataclass
class Names:
    """Imports (local name -> qualified name) and constructor assignments of one module."""

    imports: dict[str, str] = field(default_factory=dict)
    constructed: list[tuple[str, cst.Call]] = field(default_factory=list)
    """(target, call) for every ``target = call(...)`` statement, target dotted."""

    def qualified(self, node: cst.BaseExpression) -> str | None:
        """The qualified name of a Name/Attribute chain whose base is imported, else None."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        base = self.imports.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def local_for(self, qualified: str) -> str | None:
        """A local name bound to exactly ``qualified`` (e.g. the alias of ``torch``), or None."""
        return next((k for k, v in self.imports.items() if v == qualified), None)

    def targets_of(self, *suffixes: str) -> set[str]:
        """Targets assigned from a call whose callee (qualified or dotted) ends with a suffix."""
        found = set()
        for target, call in self.constructed:
            callee = self.qualified(call.func) or dotted(call.func) or ""
            if callee.rsplit(".", 1)[-1] in suffixes:
                found.add(target)
        return found


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
                    full = dotted(alias.name) or ""
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        names.imports[alias.asname.name.value] = full
                    else:
                        head = full.split(".", 1)[0]
                        names.imports[head] = head
            elif isinstance(small, cst.ImportFrom):
                if (
                    small.relative
                    or small.module is None
                    or isinstance(small.names, cst.ImportStar)
                ):
                    continue
                module_name = dotted(small.module)
                for alias in small.names:
                    name = dotted(alias.name)
                    local = name
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        local = alias.asname.name.value
                    if local and name:
                        names.imports[local] = f"{module_name}.{name}"
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
