"""Check rules are discovered from the modules of ``freezegen.check.rules``, never listed."""

from __future__ import annotations

from freezegen.check.rule import CheckRule
from freezegen.rules import RuleRegistry

REGISTRY: RuleRegistry[type[CheckRule]] = RuleRegistry(
    "check", "freezegen.check.rules", CheckRule, instances=False
)


def all_rules() -> tuple[type[CheckRule], ...]:
    """Return every check rule class, ordered by code; raise if two share a code."""
    return REGISTRY.rules
