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

from freezegen._io import ReadRefused, TooLarge, describe_size, read_bytes
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
_SCALAR_TAGS = ("str", "int", "float", "bool", "null")


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
    """Read a spec file as UTF-8 text, refusing huge, binary and undecodable files and
    anything but a regular file (a FIFO would block, a device never end)."""
    shown = str(path)
    try:
        raw = read_bytes(path, MAX_BYTES)
    except TooLarge:
        return None, [_too_large(shown)]
    except ReadRefused as exc:
        return None, [Diagnostic("FG006", f"cannot read file: {exc.reason}", shown, 1, 1)]
    return decode(raw, shown)


def _too_large(shown: str) -> Diagnostic:
    msg = f"file is larger than {describe_size(MAX_BYTES)}; a spec is a few KiB"
    return Diagnostic("FG006", msg, shown, 1, 1)


def decode(raw: bytes, shown: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode UTF-8 (with or without BOM); binary or other encodings get a located FG006."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [
            Diagnostic(
                "FG006", "file is UTF-16 (or UTF-32) encoded; save the spec as UTF-8", shown, 1, 1
            )
        ]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, col = _byte_pos(raw, nul)
        return None, [
            Diagnostic(
                "FG006", "binary file (NUL byte); a spec is UTF-8 YAML text", shown, line, col
            )
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _byte_pos(raw, exc.start)
        msg = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the spec as UTF-8"
        return None, [Diagnostic("FG006", msg, shown, line, col)]
    return text, []


def _byte_pos(raw: bytes, offset: int) -> Pos:
    """1-based line and column (in characters, as editors count) of byte ``offset``."""
    before = raw[:offset]
    line = before.count(b"\n") + 1
    line_start = before.rfind(b"\n") + 1
    col = len(raw[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, col


def _clamp(text: str, pos: Pos) -> Pos:
    """Keep ``pos`` inside ``text``: libyaml reports end-of-input one line past a last line
    that has no newline."""
    line, col = pos
    lines = text.splitlines() or [""]
    if line > len(lines):
        return len(lines), len(lines[-1]) + 1
    return max(line, 1), max(min(col, len(lines[line - 1]) + 1), 1)


def shorten(text: object, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters for a message (keys and values can be megabytes)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def parse_document(text: str, shown: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse YAML text into a :class:`Document`; every problem comes back as a diagnostic."""
    problems: list[Diagnostic] = []
    text = text.removeprefix("\ufeff")  # libyaml skips a BOM without counting a column
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # a str from a caller, not a file: lone surrogates
        line = text.count("\n", 0, exc.start) + 1
        col = exc.start - (text.rfind("\n", 0, exc.start) + 1) + 1
        return None, [
            Diagnostic(
                "FG006",
                "text holds an unpaired surrogate "
                f"(U+{ord(text[exc.start]):04X}); it is not valid Unicode",
                shown,
                line,
                col,
            )
        ]
    if size > MAX_BYTES:  # read_text refuses such files; text handed to load_text gets here
        return None, [_too_large(shown)]
    try:
        root = _build_tree(text, problems, shown)
    except _Problem as p:
        return None, [*problems, Diagnostic(p.code, p.message, shown, *_clamp(text, p.pos))]
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
    values = 0  # value nodes and alias uses, bounded before any expansion (a flat 4 MiB list)
    last_line = len(text.splitlines()) or 1

    def attach(node: _Node) -> None:
        nonlocal root, values
        if stack and stack[-1].kind == "map" and pending_key[-1] is None:
            if node.kind != "scalar":
                raise _Problem("FG004", "mapping keys must be plain strings", node.pos)
            pending_key[-1] = node
            return
        values += 1
        if values > MAX_NODES:
            raise _Problem(
                "FG007",
                f"document has more than {MAX_NODES} values; a spec has a few hundred",
                node.pos,
            )
        if not stack:
            root = node
        elif stack[-1].kind == "seq":
            stack[-1].items.append(node)
        else:
            stack[-1].items.append((pending_key[-1], node))
            pending_key[-1] = None

    try:
        for event in yaml.parse(text, Loader=loader):
            name = type(event).__name__
            mark = event.start_mark
            pos = (mark.line + 1, mark.column + 1)
            if pos[0] > last_line:  # an empty value at the very end: libyaml puts it past it
                pos = _clamp(text, pos)
            if name == "DocumentStartEvent":
                documents += 1
                if documents > 1:
                    raise _Problem(
                        "FG001", "a spec file holds one YAML document, found a second", pos
                    )
            elif name in ("MappingStartEvent", "SequenceStartEvent"):
                if len(stack) >= MAX_DEPTH:
                    raise _Problem("FG007", f"document nested deeper than {MAX_DEPTH} levels", pos)
                _check_tag(event.tag, ("map" if name[0] == "M" else "seq",), pos)
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
                value = _resolve_scalar(event, pos)
                if isinstance(value, str) and "\x00" in value:
                    # Only a "\0" escape gets here (files with NUL bytes are refused); no spec
                    # value needs one, and paths holding one make every os call raise.
                    problems.append(
                        Diagnostic(
                            "FG004",
                            "string holds a NUL character (\\0); no spec value needs one",
                            shown,
                            *pos,
                        )
                    )
                    value = value.replace("\x00", "\ufffd")
                node = _Node("scalar", pos, value)
                if event.anchor:
                    anchors[event.anchor] = node
                attach(node)
            elif name == "AliasEvent":
                target = anchors.get(event.anchor)
                if target is None:
                    raise _Problem("FG001", f"unknown alias *{shorten(event.anchor)}", pos)
                if not target.closed and target.kind != "scalar":
                    raise _Problem(
                        "FG007",
                        f"alias *{shorten(event.anchor)} refers to itself (a recursive structure)",
                        pos,
                    )
                attach(target)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if "maximum nesting depth" in (exc.problem or ""):  # libyaml's own limit (flow levels)
            raise _Problem(
                "FG007", f"document nested deeper than {MAX_DEPTH} levels", where
            ) from None
        detail = exc.problem or "invalid YAML"
        if exc.context:
            ctx_mark = exc.context_mark
            started = (
                f" started on line {ctx_mark.line + 1}"
                if ctx_mark and mark and ctx_mark.line != mark.line
                else ""
            )
            detail = f"{detail} ({exc.context}{started})"
        detail += _syntax_hint(text, where)
        raise _Problem("FG001", f"YAML syntax error: {detail}", where) from None
    except yaml.reader.ReaderError as exc:  # control characters: a byte offset, no mark
        where = _byte_pos(text.encode("utf-8"), exc.position)
        char = exc.character
        shown_char = f"#x{char:04x}" if isinstance(char, int) else repr(char)
        raise _Problem(
            "FG001",
            f"YAML syntax error: character {shown_char} is not allowed in "
            f"YAML ({exc.reason}); remove it or quote it as an escape",
            where,
        ) from None
    except yaml.YAMLError as exc:
        raise _Problem("FG001", f"YAML syntax error: {shorten(exc, 200)}", (1, 1)) from None
    return root


def _syntax_hint(text: str, pos: Pos) -> str:
    """A hint for the two syntax errors whose libyaml message does not name the cause."""
    lines = text.splitlines()
    if not 0 < pos[0] <= len(lines):
        return ""
    line = lines[pos[0] - 1]
    if "\t" in line[: pos[1]] and not line[: pos[1]].replace("\t", " ").strip():
        return "; indent with spaces, YAML does not allow tabs for indentation"
    if pos[1] > 1024 and ":" in line[pos[1] - 1 : pos[1] + 1]:
        return (
            "; a key on the same line as its ':' is limited to 1024 characters (YAML implicit keys)"
        )
    return ""


def _check_tag(tag: str | None, allowed: tuple[str, ...], pos: Pos) -> None:
    if tag is None or tag == "!":
        return
    short = tag.removeprefix(_TAG)
    if short in allowed:
        return
    if short in _SCALAR_TAGS:
        if not allowed:
            return
        kind = "mapping" if allowed[0] == "map" else "sequence"
        raise _Problem("FG004", f"YAML tag !!{short} cannot tag a {kind}", pos)
    raise _Problem("FG004", f"YAML tag {shorten(tag)!r} is not supported in a spec", pos)


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
        if len(value) > 4000:  # Python refuses int() of > 4300 digits; no spec number is that big
            return value
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
        self.reported: set[int] = set()  # duplicate keys already reported (aliases repeat them)

    def run(self, node: _Node) -> Any:
        return self._value(node, (), 0)

    def _value(self, node: _Node, loc: Loc, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Problem(
                "FG007",
                f"document expands to more than {MAX_NODES} nodes (aliases nested too deeply?)",
                node.pos,
            )
        if depth > MAX_DEPTH:
            raise _Problem("FG007", f"document nested deeper than {MAX_DEPTH} levels", node.pos)
        self.doc.value_pos.setdefault(loc, node.pos)
        if node.kind == "scalar":
            return node.value
        if node.kind == "seq":
            return [self._value(item, (*loc, i), depth + 1) for i, item in enumerate(node.items)]
        out: dict[str, Any] = {}
        self._fill(node, loc, depth, out, merging=False)
        return out

    def _fill(
        self, node: _Node, loc: Loc, depth: int, out: dict[str, Any], *, merging: bool
    ) -> None:
        """Add ``node``'s keys to ``out``: its own keys first, then its ``<<`` merges.

        Keys already in ``out`` win (YAML merge rules: a mapping's own keys override merged
        ones, and earlier merge sources override later ones); so positions recorded for a key
        are those of the value actually used.
        """
        seen: dict[str, Pos] = {}
        merges: list[_Node] = []
        for key_node, value_node in node.items:
            if key_node.value == "<<" and value_node.kind in ("map", "seq"):
                merges.append(value_node)
                continue
            key = _key_text(key_node.value)
            if key in seen:
                if id(key_node) not in self.reported:
                    self.reported.add(id(key_node))
                    self.problems.append(
                        Diagnostic(
                            "FG003",
                            f"duplicate key {shorten(key)!r} (first on line {seen[key][0]}); "
                            "most YAML tools would silently use the last one",
                            self.doc.path,
                            *key_node.pos,
                        )
                    )
                continue
            seen[key] = key_node.pos
            if merging and key in out:
                continue
            self.doc.key_pos[(*loc, key)] = key_node.pos
            out[key] = self._value(value_node, (*loc, key), depth + 1)
        for merge in merges:
            for source in merge.items if merge.kind == "seq" else [merge]:
                if source.kind != "map":
                    raise _Problem(
                        "FG004", "a '<<' merge takes a mapping or a list of mappings", source.pos
                    )
                if depth + 1 > MAX_DEPTH:
                    raise _Problem(
                        "FG007", f"document nested deeper than {MAX_DEPTH} levels", source.pos
                    )
                self.count += 1
                if self.count > MAX_NODES:
                    raise _Problem(
                        "FG007",
                        f"document expands to more than {MAX_NODES} nodes "
                        "(aliases nested too deeply?)",
                        source.pos,
                    )
                self._fill(source, loc, depth + 1, out, merging=True)


def _key_text(key: Any) -> str:
    """Mapping keys as strings, as they would be written (``null``, ``true``, ``1.5``)."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)
