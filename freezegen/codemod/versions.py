"""The library versions a script's project pins, for the edits that need a minimum version.

The rewritten script runs elsewhere, so the versions installed here say nothing about it; what
the project declares does. Walking up from the script to the project's root (the folder
holding ``.git``, or the filesystem root), every ``requirements*.txt``, ``pyproject.toml``
(``[project]`` dependencies and optional dependencies, Poetry's dependency tables),
``setup.cfg`` (``install_requires``, ``extras_require``) and ``setup.py`` (a literal
``install_requires=[...]``) is read, bounded, regular files only. A pin *admits* an old version
when some version below the minimum satisfies it; a package named without a version, or not
named at all, is unknown. ``packaging`` is no dependency of freezegen, so the few specifier
operators real pins use are compared here, on release numbers.
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from freezegen._io import ReadRefused, read_bytes

MAX_BYTES = 1024 * 1024
"""The largest project file read for pins (real ones are a few KiB)."""
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)")
_CLAUSE = re.compile(r"\s*(===|==|!=|~=|>=|<=|>|<|\^|~)?\s*([0-9][0-9A-Za-z.*+!-]*)\s*")
_RELEASE = re.compile(r"\d+(?:\.\d+)*")


@dataclass(frozen=True)
class Pin:
    """One requirement on a package: its specifier and where it is written."""

    package: str
    specifier: str
    """``>=4.30,<5`` (PEP 440), ``^4.30`` (Poetry); empty when no version is given."""
    path: Path
    line: int

    def describe(self) -> str:
        return f"{self.path}:{self.line} pins {self.package}{self.specifier}"


@dataclass(frozen=True)
class Pins:
    """Every pin found for a script (none when the script has no project on disk)."""

    pins: tuple[Pin, ...] = ()

    def older_than(self, package: str, minimum: str) -> Pin | None:
        """The first pin of ``package`` that admits a version below ``minimum``; None when
        every pin requires ``minimum`` or later, or none says (unknown)."""
        wanted = _normal(package)
        for pin in self.pins:
            if _normal(pin.package) == wanted and admits_below(pin.specifier, minimum):
                return pin
        return None

    def pinned(self, package: str) -> bool:
        """True when some pin gives ``package`` a version."""
        wanted = _normal(package)
        return any(_normal(p.package) == wanted and p.specifier for p in self.pins)


def too_old(pins: Pins, package: str, minimum: str, edit: str) -> str | None:
    """Why ``edit`` cannot be written for a project whose pins admit ``package`` older than
    ``minimum`` (a reason naming the pin's file and line), or None when it can."""
    pin = pins.older_than(package, minimum)
    if pin is None:
        return None
    return (
        f"{edit} needs {package} >= {minimum}, but {pin.describe()}, which admits older "
        f"versions; require {package}>={minimum} there"
    )


def admits_below(specifier: str, minimum: str) -> bool:
    """True when a version below ``minimum`` satisfies ``specifier`` (``>=4.30,<5``,
    ``==4.34.*``, ``~=4.30``, ``^4.30``); False when it cannot be told (no version given, or
    a clause this comparator does not read)."""
    clauses = [c for c in specifier.split(",") if c.strip()]
    if not clauses:
        return False
    floor: tuple[int, ...] | None = None
    for clause in clauses:
        match = _CLAUSE.fullmatch(clause)
        if match is None:
            return False
        operator, version = match.group(1) or "==", match.group(2)
        release = _release(version)
        if release is None:
            return False
        if operator in ("<", "<=", "!="):
            continue  # an upper bound or a hole: older versions stay admitted
        floor = release if floor is None else max(floor, release, key=_padded)
    return floor is None or _padded(floor) < _padded(_release(minimum) or (0,))


def project_pins(script: Path) -> Pins:
    """The pins of the project ``script`` belongs to (see the module docstring)."""
    pins: list[Pin] = []
    folder = script.resolve().parent
    while True:
        for path in sorted(folder.glob("requirements*.txt")):
            pins += _requirements(path)
        pins += _pyproject(folder / "pyproject.toml")
        pins += _setup_cfg(folder / "setup.cfg")
        pins += _setup_py(folder / "setup.py")
        if (folder / ".git").exists() or folder.parent == folder:
            return Pins(tuple(pins))
        folder = folder.parent


def _text(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        return read_bytes(path, MAX_BYTES).decode("utf-8")
    except (ReadRefused, UnicodeDecodeError):
        return None  # an unreadable project file pins nothing the codemod can know


def _pin(requirement: str, path: Path, line: int) -> Pin | None:
    text = requirement.split(";", 1)[0].split("#", 1)[0].strip()
    match = _NAME.fullmatch(text)
    if match is None or text.startswith("-"):
        return None
    specifier = match.group(2).strip().strip("()").replace(" ", "")
    return Pin(match.group(1), specifier, path, line)


def _requirements(path: Path) -> list[Pin]:
    text = _text(path)
    if text is None:
        return []
    found = (_pin(line, path, n) for n, line in enumerate(text.splitlines(), 1))
    return [p for p in found if p is not None]


def _pyproject(path: Path) -> list[Pin]:
    text = _text(path)
    if text is None:
        return []
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    lines = text.splitlines()
    project = document.get("project", {})
    listed = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        listed += extra
    pins = [
        p
        for item in listed
        if isinstance(item, str) and (p := _pin(item, path, _line_of(lines, item))) is not None
    ]
    poetry = document.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {})]
    tables += [g.get("dependencies", {}) for g in poetry.get("group", {}).values()]
    for table in tables:
        for name, value in table.items():
            version = value.get("version", "") if isinstance(value, dict) else value
            if isinstance(version, str):
                key = re.compile(rf"\s*[\"']?{re.escape(name)}[\"']?\s*=")
                line = next((n for n, t in enumerate(lines, 1) if key.match(t)), 0)
                pins.append(Pin(name, "" if version == "*" else version, path, line))
    return pins


def _setup_cfg(path: Path) -> list[Pin]:
    text = _text(path)
    if text is None:
        return []
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    items = []
    if parser.has_option("options", "install_requires"):
        items += parser.get("options", "install_requires").splitlines()
    if parser.has_section("options.extras_require"):
        for _, value in parser.items("options.extras_require"):
            items += value.splitlines()
    lines = text.splitlines()
    found = (_pin(i, path, _line_of(lines, i.strip())) for i in items if i.strip())
    return [p for p in found if p is not None]


def _setup_py(path: Path) -> list[Pin]:
    text = _text(path)
    if text is None:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    pins = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.keyword)
            and node.arg == "install_requires"
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            continue
        for item in node.value.elts:
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                pin = _pin(item.value, path, item.lineno)
                if pin is not None:
                    pins.append(pin)
    return pins


def _line_of(lines: list[str], text: str) -> int:
    return next((n for n, line in enumerate(lines, 1) if text in line), 0)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _release(version: str) -> tuple[int, ...] | None:
    match = _RELEASE.match(version)
    return tuple(int(x) for x in match.group().split(".")) if match else None


def _padded(release: tuple[int, ...]) -> tuple[int, ...]:
    return release + (0,) * (6 - len(release))
