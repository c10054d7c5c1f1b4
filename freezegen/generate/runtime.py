"""The source of :mod:`freezegen.runtime` modules, as a generated script carries it.

A script must run without freezegen installed, so the code it shares with the traced estimator
(which parameters a freeze selection names, which linears an adapter selection names) travels as
text: the module's statements below its docstring and imports, placed verbatim in the script,
whose own imports include the module's (tests/generate/test_runtime.py checks that). A runtime
module may import another (adapters uses freezing's helpers): the script carries the other's
source too (:func:`runtime_requires`), so that import is not one the script makes.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"
RUNTIME_PACKAGE = "freezegen.runtime"


def _is_import(node: ast.stmt) -> bool:
    return isinstance(node, (ast.Import, ast.ImportFrom))


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


@cache
def runtime_source(module: str) -> str:
    """Return the source of ``freezegen/runtime/<module>.py`` from its first definition on.

    Raises ValueError when an import follows a definition: the script could not hold it.
    """
    text = (RUNTIME / f"{module}.py").read_text(encoding="utf-8")
    body = ast.parse(text).body
    if body and _is_docstring(body[0]):
        body = body[1:]
    code = [node for node in body if not _is_import(node)]
    first = code[0]
    if any(_is_import(node) and node.lineno > first.lineno for node in body):
        raise ValueError(f"freezegen/runtime/{module}.py imports below its first definition")
    start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
    return "".join(text.splitlines(keepends=True)[start - 1 :])


def _runtime_module(node: ast.stmt) -> str | None:
    """The runtime module ``node`` imports from (``from freezegen.runtime.X import ...``)."""
    if isinstance(node, ast.ImportFrom) and node.module:
        package, _, name = node.module.rpartition(".")
        if package == RUNTIME_PACKAGE:
            return name
    return None


def runtime_imports(module: str) -> list[str]:
    """Return the import statements of ``freezegen/runtime/<module>.py`` (``__future__`` too),
    as written there, except those of other runtime modules (see :func:`runtime_requires`)."""
    text = (RUNTIME / f"{module}.py").read_text(encoding="utf-8")
    return [
        ast.get_source_segment(text, n) or ""
        for n in ast.parse(text).body
        if _is_import(n) and _runtime_module(n) is None
    ]


def runtime_requires(module: str) -> list[str]:
    """Return the runtime modules ``freezegen/runtime/<module>.py`` imports from, in the order
    it imports them: a script carrying ``module``'s source must carry theirs as well."""
    text = (RUNTIME / f"{module}.py").read_text(encoding="utf-8")
    found = [_runtime_module(n) for n in ast.parse(text).body]
    return [name for name in found if name is not None]
