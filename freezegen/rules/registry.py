"""A tool's rules, discovered from the modules of one package, never listed by hand."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from freezegen.rules.catalog import foreign_codes
from freezegen.rules.options import Overrides, RuleOptions, check_selectors, options_for


class Coded(Protocol):
    """A rule, or a rule class: anything with a stable code."""

    code: str


R = TypeVar("R", bound=Coded)


class RuleRegistry(Generic[R]):
    """Every subclass of ``base`` defined in a module of ``package``, ordered by code.

    ``instances``: hold one instance of each rule (lint) rather than the class (check rules are
    instantiated per file). ``tool`` names the code space in :mod:`freezegen.rules.catalog`.
    Discovery imports the rule modules on first use, not when the registry is built.
    """

    def __init__(self, tool: str, package: str, base: type, *, instances: bool) -> None:
        self.tool = tool
        self.package = package
        self.base = base
        self.instances = instances

    @cached_property
    def rules(self) -> tuple[R, ...]:
        """Every rule, ordered by code; raises RuntimeError if two share a code."""
        package = importlib.import_module(self.package)
        found: dict[str, Any] = {}
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{self.package}.{info.name}")
            for obj in vars(module).values():
                if (
                    isinstance(obj, type)
                    and issubclass(obj, self.base)
                    and obj.__module__ == module.__name__
                ):
                    if obj.code in found:
                        raise RuntimeError(f"rule code {obj.code} used twice: {module.__name__}")
                    found[obj.code] = obj() if self.instances else obj
        return tuple(found[code] for code in sorted(found))

    def codes(self) -> list[str]:
        """Every rule's code, in order."""
        return [rule.code for rule in self.rules]

    def rule_for(self, code: str) -> R | None:
        """Return the rule with ``code``, or None."""
        return next((r for r in self.rules if r.code == code), None)

    def check_overrides(self, overrides: Overrides) -> None:
        """Raise ConfigError for a --select or --ignore selector that names none of our codes."""
        known = self.codes()
        if overrides.select is not None:
            check_selectors(overrides.select, known, "--select")
        check_selectors(overrides.ignore, known, "--ignore")

    def options_for(self, path: Path, overrides: Overrides) -> RuleOptions:
        """The options for one file: ``overrides`` over its nearest ``[tool.freezegen]``.

        Raises ConfigError when that table is malformed or names a code no tool has.
        """
        return options_for(path, overrides, self.codes() + foreign_codes(self.tool))
