"""Check rules are discovered from the modules of ``freezegen.check.rules``, never listed."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from freezegen.check.rule import CheckRule


@cache
def all_rules() -> tuple[type[CheckRule], ...]:
    """Return every rule class, ordered by code; raise if two share a code."""
    from freezegen.check import rules as package

    found: dict[str, type[CheckRule]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, CheckRule)
                and obj.__module__ == module.__name__
            ):
                if obj.code in found:
                    raise RuntimeError(f"rule code {obj.code} used twice: {module.__name__}")
                found[obj.code] = obj
    return tuple(found[code] for code in sorted(found))


def rule_for(code: str) -> type[CheckRule] | None:
    """Return the rule class with ``code``, or None."""
    return next((r for r in all_rules() if r.code == code), None)


def known_codes() -> list[str]:
    return [r.code for r in all_rules()]
