"""Which tool owns which rule codes: ``lint`` FG0xx-FG3xx, ``check`` FG5xx.

``[tool.freezegen]`` is one table for both tools. Each validates the codes of its own space
exactly (it has the rules at hand) and accepts any code of another tool's space without
importing that tool's rules: check's rules import libcst, which must stay out of every lint run.
"""

from __future__ import annotations

import importlib
from typing import Any

CODE_SPACES: dict[str, tuple[str, ...]] = {
    "lint": ("FG0", "FG1", "FG2", "FG3"),
    "check": ("FG5",),
}
_REGISTRIES = {"lint": "freezegen.lint.registry", "check": "freezegen.check.registry"}


def owner(code: str) -> str | None:
    """Return the tool whose code space holds ``code`` ("lint" or "check"), or None."""
    return next((tool for tool, space in CODE_SPACES.items() if code.startswith(space)), None)


def foreign_codes(tool: str) -> list[str]:
    """Return every code (FGxyy) in the spaces of the tools other than ``tool``."""
    return [
        f"{prefix}{i:02d}"
        for other, space in CODE_SPACES.items()
        if other != tool
        for prefix in space
        for i in range(100)
    ]


def rule_for(code: str) -> Any:
    """Return the registered rule with ``code`` from the tool that owns it, or None.

    A lint rule is an instance, a check rule a class; both carry ``name``, ``summary`` and
    ``severity``. Imports only the owning tool's rules.
    """
    tool = owner(code)
    if tool is None:
        return None
    registry = importlib.import_module(_REGISTRIES[tool]).REGISTRY
    return registry.rule_for(code)
