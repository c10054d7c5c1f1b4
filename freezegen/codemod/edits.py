"""Statement-level edits on a libcst tree that leave every other byte of the file alone.

An edit replaces one statement with a list of statements. Comments and blank lines above a
statement are its ``leading_lines``; when a statement moves into a new block, they move to the
block's header so they stay where the reader saw them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import libcst as cst

from freezegen.check.names import dotted

Replace = Callable[[cst.BaseStatement], Sequence[cst.BaseStatement]]


def statements(code: str) -> list[cst.BaseStatement]:
    """Parse ``code`` (a few statements, indented from column 0) into statements."""
    return list(cst.parse_module(code).body)


def statement(code: str) -> cst.BaseStatement:
    (only,) = statements(code)
    return only


def apply(
    module: cst.Module,
    edits: dict[int, Replace],
    swaps: dict[int, cst.BaseExpression] | None = None,
) -> cst.Module:
    """``module`` with each statement whose ``id`` is a key of ``edits`` replaced by what its
    edit returns, and each expression whose ``id`` is a key of ``swaps`` by its value.

    Swaps are matched in the same pass, on the original nodes, so they land wherever the
    expression sits: in an edited statement's branch, or in a function's parameter default
    whose body another edit changes (a later pass would no longer find them by ``id``).
    """
    if not edits and not swaps:
        return module
    return module.visit(_Edit(edits, swaps or {}))


class _Edit(cst.CSTTransformer):
    def __init__(self, edits: dict[int, Replace], swaps: dict[int, cst.BaseExpression]) -> None:
        super().__init__()
        self.edits = edits
        self.swaps = swaps

    def on_leave(
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.FlattenSentinel[cst.BaseStatement]:
        swap = self.swaps.get(id(original_node))
        if swap is not None:
            return swap
        edit = self.edits.get(id(original_node))
        if edit is None:
            return updated_node
        assert isinstance(updated_node, cst.BaseStatement)
        if updated_node.deep_equals(original_node):
            updated_node = original_node  # edits may look for nodes inside by identity
        return cst.FlattenSentinel(list(edit(updated_node)))


def before(new: Sequence[cst.BaseStatement]) -> Replace:
    """An edit putting ``new`` above a statement, and above its comments."""

    def edit(stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        return [*new, stmt]

    return edit


def after(new: Sequence[cst.BaseStatement]) -> Replace:
    def edit(stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        return [stmt, *new]

    return edit


def wrap(header: str, body: Sequence[cst.BaseStatement]) -> cst.BaseCompoundStatement:
    """A ``header:`` block (``with ...``, ``if ...``) around ``body``, taking its first comments."""
    shell = statement(f"{header}:\n    pass\n")
    assert isinstance(shell, (cst.With, cst.If))
    first, *rest = body
    inner = [first.with_changes(leading_lines=()), *rest]
    return shell.with_changes(leading_lines=first.leading_lines, body=cst.IndentedBlock(body=inner))


def replace_call(old: cst.Call, new: cst.BaseExpression) -> Replace:
    """An edit swapping the expression ``old`` for ``new`` inside one statement."""
    return replace_calls({id(old): new})


def replace_calls(swaps: dict[int, cst.BaseExpression]) -> Replace:
    """An edit swapping each expression whose ``id`` is a key for its value, wherever it sits
    in the statement (every branch of ``A(...) if c else A()`` alike)."""

    class _Swap(cst.CSTTransformer):
        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
            return swaps.get(id(original_node), updated_node)

    def edit(stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        return [stmt.visit(_Swap())]  # type: ignore[list-item]

    return edit


def paren(expr: cst.BaseExpression) -> cst.BaseExpression:
    """``expr`` in parentheses unless it binds tighter than any binary operator."""
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.Integer)) or (
        expr.lpar
    ):
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def import_edits(module: cst.Module, lines: Sequence[str]) -> cst.Module:
    """``module`` with each import line added to its leading imports, where isort would put it
    (future, standard library, then the rest; straight imports before ``from`` imports)."""
    for line in lines:
        module = _add_import(module, line)
    return module


def _add_import(module: cst.Module, line: str) -> cst.Module:
    new = statement(f"{line}\n")
    key = _import_key(new)
    body = list(module.body)
    block = []
    for i, stmt in enumerate(body):
        if _is_import(stmt):
            block.append(i)
        elif block or not _is_docstring(stmt):
            break
    if not block:
        at = 1 if body and _is_docstring(body[0]) else 0
        return module.with_changes(body=[*body[:at], new, *body[at:]])
    later = next((i for i in block if _import_key(body[i]) > key), None)
    if later is None:
        last = block[-1]
        if _import_key(body[last])[0] != key[0]:
            new = new.with_changes(leading_lines=[cst.EmptyLine()])
        return module.with_changes(body=[*body[: last + 1], new, *body[last + 1 :]])
    old = body[later]
    earlier_same = any(_import_key(body[i])[0] == key[0] for i in block if i < later)
    if not earlier_same:  # the new import opens the block or its section: it takes the gap
        new = new.with_changes(leading_lines=old.leading_lines)
        gap = [cst.EmptyLine()] if _import_key(old)[0] != key[0] else []
        old = old.with_changes(leading_lines=gap)
    return module.with_changes(body=[*body[:later], new, old, *body[later + 1 :]])


def _import_key(stmt: cst.CSTNode) -> tuple[int, int, str]:
    assert isinstance(stmt, cst.SimpleStatementLine)
    small = stmt.body[0]
    if isinstance(small, cst.ImportFrom):
        name = "." * len(small.relative) + (dotted(small.module) or "")
        is_from = 1
    else:
        assert isinstance(small, cst.Import)
        name, is_from = dotted(small.names[0].name) or "", 0
    top = name.split(".", 1)[0]
    section = 0 if top == "__future__" else 1 if top in sys.stdlib_module_names else 2
    return section, is_from, name.lower()


def imported(module: cst.Module, local: str, qualified: str) -> bool:
    """True when ``local`` is bound to ``qualified`` by an import anywhere at top level."""
    for stmt in module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    name = dotted(alias.name)
                    bound = alias.asname.name.value if alias.asname else name  # type: ignore[union-attr]
                    if name == qualified and bound == local:
                        return True
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                base = dotted(small.module) if small.module else None
                for alias in small.names:
                    bound = alias.asname.name.value if alias.asname else dotted(alias.name)  # type: ignore[union-attr]
                    if f"{base}.{dotted(alias.name)}" == qualified and bound == local:
                        return True
    return False


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
