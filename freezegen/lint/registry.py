"""Spec rules are discovered from the modules of ``freezegen.lint.rules``, never listed by hand."""

from __future__ import annotations

from freezegen.lint.rule import Rule
from freezegen.rules import RuleRegistry

REGISTRY: RuleRegistry[Rule] = RuleRegistry("lint", "freezegen.lint.rules", Rule, instances=True)


def all_rules() -> tuple[Rule, ...]:
    """Return one instance of every lint rule, ordered by code; raise if two share a code."""
    return REGISTRY.rules
