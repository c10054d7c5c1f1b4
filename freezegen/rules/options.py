"""Rule options shared by ``lint`` and ``check``: command-line flags layered over the
``[tool.freezegen]`` table of the nearest pyproject.toml (select, ignore, strict, trace)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from freezegen._io import ReadRefused, read_bytes

MAX_PYPROJECT_BYTES = 1024 * 1024
"""The largest pyproject.toml read for ``[tool.freezegen]`` (real ones are a few KiB)."""


class ConfigError(Exception):
    """pyproject.toml or a command-line selector is malformed (a usage error: exit 2)."""


@dataclass(frozen=True)
class RuleOptions:
    """Which codes to report and whether warnings fail the run (for lint and check alike)."""

    select: tuple[str, ...] = ("FG",)
    ignore: tuple[str, ...] = ()
    strict: bool = False
    trace: bool = False
    """Lint's memory rules use the traced estimate (cached by spec content), not the analytic;
    ``check`` has no use for it but reads the same table."""

    def enabled(self, code: str, default: bool = True) -> bool:
        """True when ``code`` is selected and not ignored; the longer matching prefix wins.

        A rule that is off by default needs a selector more specific than the bare "FG".
        """
        minimum = 0 if default else 3
        chosen = max(
            (len(p) for p in self.select if code.startswith(p) and len(p) >= minimum), default=-1
        )
        ignored = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        return chosen >= 0 and chosen > ignored


@dataclass(frozen=True)
class Overrides:
    """What the command line said; None means "not given, use the config file"."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = field(default=())
    strict: bool | None = None
    trace: bool | None = None
    use_config: bool = True


def check_selectors(selectors: tuple[str, ...], known: list[str], where: str) -> None:
    """Raise ConfigError for a selector that is no prefix of any known code."""
    for sel in selectors:
        if not any(code.startswith(sel) for code in known):
            raise ConfigError(f"{where}: {sel!r} selects no rule (codes look like FG102)")


def options_for(path: Path, overrides: Overrides, known: list[str]) -> RuleOptions:
    """Merge the ``[tool.freezegen]`` table nearest to ``path`` (if any) with ``overrides``.

    ``known`` lists the codes a selector in the table may name. Raises ConfigError when the
    table is malformed or one of its selectors names no known code.
    """
    base = RuleOptions()
    if overrides.use_config:
        # realpath, unlike Path.resolve, leaves a symlink loop as it is instead of raising:
        # reading the file reports the loop
        found = find_pyproject(Path(os.path.realpath(path)).parent)
        if found is not None:
            base = _from_table(found, _table(found), known)
    select = overrides.select if overrides.select is not None else base.select
    strict = overrides.strict if overrides.strict is not None else base.strict
    trace = overrides.trace if overrides.trace is not None else base.trace
    return replace(
        base, select=select, ignore=base.ignore + overrides.ignore, strict=strict, trace=trace
    )


@cache
def find_pyproject(start: Path) -> Path | None:
    """The closest pyproject.toml with a ``[tool.freezegen]`` table, walking up from ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "freezegen" in _table_names(candidate):
            return candidate
    return None


@cache
def _document(path: Path) -> dict[str, Any]:
    """The parsed pyproject.toml, read once and bounded like every file a user hands over."""
    try:
        raw = read_bytes(path, MAX_PYPROJECT_BYTES)
        return tomllib.loads(raw.decode("utf-8"))
    except ReadRefused as exc:
        raise ConfigError(str(exc)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _table_names(path: Path) -> frozenset[str]:
    tool = _document(path).get("tool", {})
    return frozenset(tool) if isinstance(tool, dict) else frozenset()


def _table(path: Path) -> dict[str, Any]:
    table = _document(path)["tool"]["freezegen"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.freezegen] must be a table")
    return table


def _from_table(path: Path, table: dict[str, Any], known: list[str]) -> RuleOptions:
    allowed = {"select", "ignore", "strict", "trace"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) in [tool.freezegen]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    options: dict[str, Any] = {}
    for key in ("select", "ignore"):
        if key in table:
            value = table[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{path}: [tool.freezegen] {key} must be a list of codes")
            check_selectors(tuple(value), known, f"{path}: {key}")
            options[key] = tuple(value)
    for key in ("strict", "trace"):
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{path}: [tool.freezegen] {key} must be true or false")
            options[key] = table[key]
    return RuleOptions(**options)
