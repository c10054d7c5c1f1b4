"""Rules are discovered from the modules of ``freezegen.lint.rules``, never listed by hand."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

from freezegen.lint.rule import Rule, SchemaRule

if TYPE_CHECKING:
    from freezegen.check.rule import CheckRule


@cache
def all_rules() -> tuple[Rule, ...]:
    """Return one instance of every rule, ordered by code; raise if two share a code."""
    from freezegen.lint import rules as package

    found: dict[str, Rule] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, Rule)
                and obj.__module__ == module.__name__
                and obj not in (Rule, SchemaRule)
            ):
                if obj.code in found:
                    raise RuntimeError(f"rule code {obj.code} used twice: {module.__name__}")
                found[obj.code] = obj()
    return tuple(found[code] for code in sorted(found))


def rule_for(code: str) -> Rule | type[CheckRule] | None:
    """Return the rule with ``code`` (FG5xx: the ``freezegen check`` rule class), or None."""
    if code.startswith("FG5"):
        from freezegen.check.registry import rule_for as check_rule_for

        return check_rule_for(code)
    return next((r for r in all_rules() if r.code == code), None)
