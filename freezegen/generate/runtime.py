"""The source of :mod:`freezegen.runtime` modules, as a generated script carries it.

A script must run without freezegen installed, so the code it shares with the traced estimator
(which parameters a freeze selection names) travels as text: the module's statements below its
docstring and imports, placed verbatim in the script, whose own imports include the module's
(tests/generate/test_runtime.py checks that).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


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


def runtime_imports(module: str) -> list[str]:
    """Return the import statements of ``freezegen/runtime/<module>.py`` (``__future__`` too),
    as written there."""
    text = (RUNTIME / f"{module}.py").read_text(encoding="utf-8")
    return [ast.get_source_segment(text, n) or "" for n in ast.parse(text).body if _is_import(n)]
