"""The gate before libcst: CPython's own parser decides whether a file is Python, within limits.

libcst's native parser kills the whole process (SIGSEGV) on a few thousand nested brackets or
lambdas, its Python visitors hit the recursion limit after a hundred-odd levels of nesting, and
its trees cost about 70 µs a node to build and visit (a 200,000-element literal: 18 s and
0.9 GB in ``check``, minutes in ``codemod``). CPython's C parser is an order of magnitude cheaper
and raises instead of crashing, so every file goes through it first: a file that libcst will
parse through :func:`parse` and :func:`bound`, any other through :func:`check_syntax`. What they
reject becomes one FG500 finding (a problem, in ``codemod``) for that file, naming the limit,
and the run goes on.

The limits (documented in README "Guarantees"): :data:`MAX_SOURCE_BYTES`, :data:`MAX_NESTING`,
:data:`MAX_NODES`, and CPython's own (200 nested brackets, 100 indentation levels, its parser
stack): real code stays far below all of them (in transformers 4.x: 280 KB, 28 levels, 27,000
nodes at most).
"""

from __future__ import annotations

import ast
import symtable
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from freezegen.pysource import DECODE_HELP, MAX_SOURCE_BYTES, source_encoding
from freezegen.rules import source_lines

MAX_NESTING = 64
"""Deepest nesting of syntax nodes (``ast`` levels) that libcst is given: its visitors recurse
about eight Python frames a level, and need room under the interpreter's recursion limit."""
MAX_NODES = 50_000
"""Most syntax nodes (as ``ast.walk`` counts them) that libcst is given: libcst and the rules
take about 70 µs a node (the largest real file, 27,000 nodes, about 2 s), so one file costs
seconds and a few hundred MB at most (at the limit: check 5 s and 240 MB, codemod 6 s)."""

_SKIP = "leave the file out of the paths given"
_SYNTAX_HELP = "only files that parse as Python 3 are looked at"
_CPYTHON_LIMITS = ("too many nested parentheses", "too many levels of indentation")


@dataclass
class Rejected(Exception):
    """The file is not looked at further: why, what to do, and where (line 0: the whole file)."""

    message: str
    help: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return self.message


@dataclass
class Parsed:
    """A file as CPython reads it: the decoded text and its syntax tree."""

    text: str
    tree: ast.Module


def parse(source: bytes | str) -> Parsed:
    """Decode ``source`` (bytes: BOM and PEP 263 declaration honoured) and parse it with
    CPython's parser. Raises :class:`Rejected` for a file over :data:`MAX_SOURCE_BYTES`, one that
    does not decode, holds a null character, or does not parse (Python's message and
    location), or one past the parser's own limits."""
    text = _text(source)
    with _python_errors():
        return Parsed(text, ast.parse(text))


def check_syntax(source: bytes | str) -> None:
    """:func:`parse`'s check, without the tree, for a file that libcst will not see: in about a
    third of the time, since CPython's ``symtable`` parses and builds no Python objects for the
    tree (``compile`` would generate code too). Raises :class:`Rejected` as :func:`parse` does."""
    text = _text(source)
    with _python_errors():
        symtable.symtable(text, "<file>", "exec")


def _text(source: bytes | str) -> str:
    """``source`` decoded and within :data:`MAX_SOURCE_BYTES`, without a null character."""
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        raise Rejected(
            f"file too large to check: {size:,} bytes (the limit is {MAX_SOURCE_BYTES:,})", _SKIP
        )
    # text handed over as str may still start with the BOM, which CPython drops when it reads
    text = _decode(source) if isinstance(source, bytes) else source.removeprefix("\ufeff")
    if "\0" in text:
        line, col = _position(text, text.index("\0"))
        raise Rejected("a null character: not a Python source file", _SKIP, line, col)
    return text


@contextmanager
def _python_errors() -> Iterator[None]:
    """CPython's parse and compile errors as :class:`Rejected`; its warnings silenced."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not ours to report
            yield
    except SyntaxError as exc:
        limit = exc.msg in _CPYTHON_LIMITS
        help = f"Python's parser rejects this; {_SKIP}" if limit else _SYNTAX_HELP
        raise Rejected(f"syntax error: {exc.msg}", help, exc.lineno or 0, exc.offset or 0) from exc
    except (MemoryError, RecursionError) as exc:  # CPython's parser stack or AST depth
        raise Rejected(
            "nested too deeply for Python's parser", f"simplify the expression or {_SKIP}"
        ) from exc
    except ValueError as exc:  # lone surrogates in text handed to us as str
        raise Rejected(f"cannot decode: {exc}", DECODE_HELP) from exc


def bound(parsed: Parsed) -> None:
    """Raise :class:`Rejected` when the tree nests deeper than :data:`MAX_NESTING` (located at
    the first node too deep) or has more than :data:`MAX_NODES` nodes."""
    level: list[ast.AST] = [parsed.tree]
    depth = nodes = 0
    while level:
        depth += 1
        nodes += len(level)
        if depth > MAX_NESTING:
            where = next((n for n in level if hasattr(n, "lineno")), None)
            raise Rejected(
                f"nested more than {MAX_NESTING} levels deep (the limit for checking a file)",
                f"split the expression or {_SKIP}",
                *_node_position(parsed.text, where),
            )
        if nodes > MAX_NODES:
            raise Rejected(
                f"more than {MAX_NODES:,} syntax nodes (the limit for checking a file)",
                f"split the file, move large literals into a data file, or {_SKIP}",
            )
        level = [child for node in level for child in ast.iter_child_nodes(node)]


def _decode(data: bytes) -> str:
    try:
        encoding = source_encoding(data)
    except SyntaxError as exc:  # a bad or unknown declaration, or one that contradicts a BOM
        raise Rejected(f"cannot decode: {exc}", DECODE_HELP, 1, 1) from exc
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        col = len(data[start : exc.start].decode(encoding, "replace")) + 1
        raise Rejected(f"cannot decode: {exc}", DECODE_HELP, line, col) from exc


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``index`` as Python counts lines (\\n, \\r\\n, \\r)."""
    before = source_lines(text[:index])
    return len(before), len(before[-1]) + 1


def _node_position(text: str, node: ast.AST | None) -> tuple[int, int]:
    """1-based line and column (in characters: ``ast`` counts UTF-8 bytes) of ``node``."""
    if node is None:
        return 0, 0
    line: int = node.lineno  # type: ignore[attr-defined]
    lines = source_lines(text)
    prefix = lines[line - 1].encode("utf-8")[: node.col_offset]  # type: ignore[attr-defined]
    return line, len(prefix.decode("utf-8", "replace")) + 1
