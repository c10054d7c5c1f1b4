"""The model families freezegen knows: every module of this package that defines ``FAMILY``.

Adding a family is adding a module here (and preset rows in :mod:`freezegen.spec.presets`);
nothing lists them by hand. Modules are imported on first use, so importing this package costs
nothing until a family is asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from freezegen.arch.family import Family
from freezegen.spec.presets import Architecture

__all__ = ["all_families", "family_for_model_type", "family_of", "known_model_types"]


@cache
def all_families() -> tuple[Family, ...]:
    """Every discovered family, by name."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        family = getattr(module, "FAMILY", None)
        if isinstance(family, Family):
            found.append(family)
    return tuple(sorted(found, key=lambda f: f.name))


@cache
def _by_name() -> dict[str, Family]:
    return {f.name: f for f in all_families()}


@cache
def _by_model_type() -> dict[str, Family]:
    return {t: f for f in all_families() for t in f.model_types}


def family_of(arch: Architecture) -> Family:
    """The family of ``arch`` (every Architecture names a discovered one)."""
    return _by_name()[arch.family]


def family_for_model_type(model_type: str) -> Family | None:
    """The family that reads configs of ``model_type``; None when no family does."""
    return _by_model_type().get(model_type)


def known_model_types() -> list[str]:
    """Every model_type some family reads, sorted."""
    return sorted(_by_model_type())
