"""Bounded YAML reading that remembers where every node came from.

Generic YAML loaders lose positions, silently keep the last of two duplicate keys, resolve
``2e-5`` as a string (YAML 1.1) and happily expand a "billion laughs" alias bomb until memory
runs out. Specs are tiny, so this module builds the document itself from libyaml's event stream
(no recursion in the parser, nothing constructed from tags) and bounds size, depth and alias
expansion. Scalars resolve with the YAML 1.2 core schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freezegen.diagnostics import Diagnostic

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 20_000

Loc = tuple[str | int, ...]
Pos = tuple[int, int]

_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")

_TAG = "tag:yaml.org,2002:"


@dataclass
class Document:
    """A parsed spec: plain data plus the 1-based position of every value and mapping key."""

    path: str
    text: str
    data: Any
    value_pos: dict[Loc, Pos] = field(default_factory=dict)
    key_pos: dict[Loc, Pos] = field(default_factory=dict)

    def locate(self, loc: Loc, *, key: bool = False) -> Pos:
        """Return the position of ``loc``, or of its closest ancestor that exists in the file."""
        loc = tuple(loc)
        while True:
            if key and loc in self.key_pos:
                return self.key_pos[loc]
            if loc in self.value_pos:
                return self.value_pos[loc]
            if loc in self.key_pos:
                return self.key_pos[loc]
            if not loc:
                return (1, 1)
            loc = loc[:-1]
            key = True

    def get(self, loc: Loc, default: Any = None) -> Any:
        """Return the raw value at ``loc`` in the document, or ``default``."""
        node = self.data
        for part in loc:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


class _Problem(Exception):
    def __init__(self, code: str, message: str, pos: Pos) -> None:
        super().__init__(message)
        self.code, self.message, self.pos = code, message, pos


@dataclass(slots=True)
class _Node:
    kind: str  # "map" | "seq" | "scalar"
    pos: Pos
    value: Any = None  # resolved scalar
    items: list[Any] = field(default_factory=list)  # seq: [_Node]; map: [(key_node, _Node)]
    closed: bool = False


def read_text(path: Path) -> tuple[str | None, list[Diagnostic]]:
    """Read a spec file as UTF-8 text, refusing huge, binary and undecodable files."""
    shown = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, [Diagnostic("FG006", f"cannot read file: {exc.strerror or exc}", shown, 1, 1)]
    if len(raw) > MAX_BYTES:
        msg = f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB; a spec is a few KiB"
        return None, [Diagnostic("FG006", msg, shown, 1, 1)]
    return decode(raw, shown)


def decode(raw: bytes, shown: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode UTF-8 (with or without BOM); binary or other encodings get a located FG006."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _byte_pos(raw, nul)
        return None, [Diagnostic("FG006", "binary file (NUL byte); a spec is UTF-8 YAML text",
                                 shown, line, col)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _byte_pos(raw, exc.start)
        msg = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the spec as UTF-8"
        return None, [Diagnostic("FG006", msg, shown, line, col)]
    return text, []


def _byte_pos(raw: bytes, offset: int) -> Pos:
    before = raw[:offset]
    line = before.count(b"\n") + 1
    col = offset - (before.rfind(b"\n") + 1) + 1
    return line, col


def parse_document(text: str, shown: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse YAML text into a :class:`Document`; every problem comes back as a diagnostic."""
    problems: list[Diagnostic] = []
    try:
        root = _build_tree(text, problems, shown)
    except _Problem as p:
        return None, [*problems, Diagnostic(p.code, p.message, shown, *p.pos)]
    if root is None:
        return None, [*problems, Diagnostic("FG004", "the spec is empty", shown, 1, 1)]
    doc = Document(shown, text, None)
    try:
        doc.data = _Materializer(doc, problems).run(root)
    except _Problem as p:
        return None, [*problems, Diagnostic(p.code, p.message, shown, *p.pos)]
    return doc, problems


def _build_tree(text: str, problems: list[Diagnostic], shown: str) -> _Node | None:
    import yaml  # deferred: keeps `import freezegen` cheap

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    anchors: dict[str, _Node] = {}
    stack: list[_Node] = []
    pending_key: list[_Node | None] = []
    root: _Node | None = None
    documents = 0

    def attach(node: _Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent = stack[-1]
        if parent.kind == "seq":
            parent.items.append(node)
        elif pending_key[-1] is None:
            if node.kind != "scalar":
                raise _Problem("FG004", "mapping keys must be plain strings", node.pos)
            pending_key[-1] = node
        else:
            parent.items.append((pending_key[-1], node))
            pending_key[-1] = None

    try:
        for event in yaml.parse(text, Loader=loader):
            name = type(event).__name__
            mark = event.start_mark
            pos = (mark.line + 1, mark.column + 1)
            if name == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    raise _Problem("FG001", "a spec file holds one YAML document, found a second", pos)
            elif name in ("MappingStartEvent", "SequenceStartEvent"):
                if len(stack) >= MAX_DEPTH:
                    raise _Problem("FG007", f"document nested deeper than {MAX_DEPTH} levels", pos)
                _check_tag(event.tag, ("map",) if name[0] == "M" else ("seq",), pos)
                node = _Node("map" if name[0] == "M" else "seq", pos)
                if event.anchor:
                    anchors[event.anchor] = node
                attach(node)
                stack.append(node)
                pending_key.append(None)
            elif name in ("MappingEndEvent", "SequenceEndEvent"):
                stack.pop().closed = True
                pending_key.pop()
            elif name == "ScalarEvent":
                node = _Node("scalar", pos, _resolve_scalar(event, pos))
                if event.anchor:
                    anchors[event.anchor] = node
                attach(node)
            elif name == "AliasEvent":
                target = anchors.get(event.anchor)
                if target is None:
                    raise _Problem("FG001", f"unknown alias *{event.anchor}", pos)
                if not target.closed and target.kind != "scalar":
                    raise _Problem("FG007", f"alias *{event.anchor} refers to itself", pos)
                attach(target)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = exc.problem or "invalid YAML"
        if exc.context:
            detail = f"{detail} ({exc.context})"
        raise _Problem("FG001", f"YAML syntax error: {detail}", where) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no problem_mark
        raise _Problem("FG001", f"YAML syntax error: {exc}", (1, 1)) from None
    return root


def _check_tag(tag: str | None, allowed: tuple[str, ...], pos: Pos) -> None:
    if tag is None or tag == "!":
        return
    short = tag.removeprefix(_TAG)
    if short in allowed or short in ("str", "int", "float", "bool", "null"):
        return
    raise _Problem("FG004", f"YAML tag {tag!r} is not supported in a spec", pos)


def _resolve_scalar(event: Any, pos: Pos) -> Any:
    value: str = event.value
    tag = event.tag
    if tag is not None and tag != "!":
        _check_tag(tag, (), pos)
        kind = tag.removeprefix(_TAG)
        if kind == "str":
            return value
        resolved = _resolve_plain(value)
        expected = {"int": int, "float": (int, float), "bool": bool, "null": type(None)}[kind]
        if isinstance(resolved, bool) != (kind == "bool") or not isinstance(resolved, expected):
            raise _Problem("FG004", f"{value!r} is not a valid !!{kind}", pos)
        return float(resolved) if kind == "float" else resolved
    if event.style or tag == "!":  # quoted, literal or folded: always a string
        return value
    return _resolve_plain(value)


def _resolve_plain(value: str) -> Any:
    if _NULL.fullmatch(value):
        return None
    if _TRUE.fullmatch(value):
        return True
    if _FALSE.fullmatch(value):
        return False
    if _INT.fullmatch(value):
        return int(value)
    if _OCT.fullmatch(value):
        return int(value[2:], 8)
    if _HEX.fullmatch(value):
        return int(value[2:], 16)
    if _FLOAT.fullmatch(value):
        return float(value)
    if _INF.fullmatch(value):
        return float("-inf") if value.startswith("-") else float("inf")
    if _NAN.fullmatch(value):
        return float("nan")
    return value


class _Materializer:
    """Turns the node tree into dicts/lists, expanding aliases within a node budget."""

    def __init__(self, doc: Document, problems: list[Diagnostic]) -> None:
        self.doc, self.problems, self.count = doc, problems, 0

    def run(self, node: _Node) -> Any:
        return self._value(node, (), 0)

    def _value(self, node: _Node, loc: Loc, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Problem("FG007", f"document expands to more than {MAX_NODES} nodes "
                           "(aliases nested too deeply?)", node.pos)
        if depth > MAX_DEPTH:
            raise _Problem("FG007", f"document nested deeper than {MAX_DEPTH} levels", node.pos)
        self.doc.value_pos.setdefault(loc, node.pos)
        if node.kind == "scalar":
            return node.value
        if node.kind == "seq":
            return [self._value(item, (*loc, i), depth + 1) for i, item in enumerate(node.items)]
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.items:
            key = key_node.value
            if key == "<<" and value_node.kind in ("map", "seq"):
                self._merge(value_node, loc, depth, merged)
                continue
            key = "" if key is None else str(key)
            if key in out:
                first = self.doc.key_pos.get((*loc, key), (0, 0))
                self.problems.append(Diagnostic(
                    "FG003", f"duplicate key {key!r} (first on line {first[0]}); most YAML "
                    "tools would silently use the last one",
                    self.doc.path, *key_node.pos))
                continue
            self.doc.key_pos[(*loc, key)] = key_node.pos
            out[key] = self._value(value_node, (*loc, key), depth + 1)
        for key, value in merged.items():
            out.setdefault(key, value)
        return out

    def _merge(self, node: _Node, loc: Loc, depth: int, merged: dict[str, Any]) -> None:
        sources = node.items if node.kind == "seq" else [node]
        for source in sources:
            if source.kind != "map":
                raise _Problem("FG004", "a '<<' merge takes a mapping or a list of mappings",
                               source.pos)
            value = self._value(source, loc, depth + 1)
            for key, item in value.items():
                merged.setdefault(key, item)
