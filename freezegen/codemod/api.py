"""Rewrite files on disk: the library surface that ``freezegen codemod`` prints.

Paths go in, a :class:`CodemodReport` comes out. Nothing is written unless asked, and then
atomically; a file that cannot be read is a problem in the report, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from freezegen._diff import unified
from freezegen._io import ReadRefused, WriteRefused, write_file
from freezegen.check.api import expand_paths
from freezegen.codemod.engine import CodemodResult, Message, codemod_source
from freezegen.codemod.options import CodemodOptions
from freezegen.pysource import (
    DECODE_HELP,
    CannotEncode,
    encode_source,
    read_source,
    source_encoding,
)


@dataclass
class CodemodReport:
    """Every file's result of one run."""

    results: list[CodemodResult] = field(default_factory=list)

    @property
    def changed(self) -> list[CodemodResult]:
        return [r for r in self.results if r.changed]

    @property
    def problems(self) -> list[Message]:
        """Why files were left alone (files in folders that the prefilter skipped are not)."""
        return [m for r in self.results for m in r.problems]


def codemod_paths(
    paths: Iterable[str | Path],
    options: CodemodOptions,
    *,
    write: bool = False,
    partial: bool = False,
    explain: bool = False,
) -> CodemodReport:
    """Rewrite every file (folders are searched for ``*.py``); with ``write``, save changes;
    with ``partial``, apply the transforms that can act even when others cannot; with
    ``explain``, each result's ``seen`` is filled.

    Raises FileNotFoundError for a path that does not exist. A file found in a folder that the
    prefilter rules out is skipped quietly; a file named on its own is reported.
    """
    report = CodemodReport()
    for raw in paths:
        named = not Path(raw).is_dir()
        for path in expand_paths([raw]):
            result = codemod_file(path, options, write=write, partial=partial, explain=explain)
            if result.skipped and not named:
                result.problems = []
            report.results.append(result)
    return report


def codemod_file(
    path: str | Path,
    options: CodemodOptions,
    *,
    write: bool = False,
    partial: bool = False,
    explain: bool = False,
) -> CodemodResult:
    """Rewrite one file, read and written in its own encoding (a BOM, a PEP 263 declaration);
    with ``write``, replace it atomically when it changed.

    A file that cannot be read or decoded, a rewrite its encoding cannot hold, and a write
    that is refused (read-only, not a regular file) are problems in the result, whose
    ``new_source`` is then None: the file is unchanged.
    """
    shown = str(path)
    try:
        data = read_source(path)
        encoding = source_encoding(data)
        source = data.decode(encoding)
    except ReadRefused as exc:
        return _unreadable(shown, f"cannot read: {exc.reason}")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _unreadable(shown, f"cannot decode: {exc.reason} ({encoding}); {DECODE_HELP}", line)
    except SyntaxError as exc:  # an unknown declared encoding, or one a BOM contradicts
        first_two = data.split(b"\n", 2)[:2]
        line = next((n for n, text in enumerate(first_two, 1) if b"coding" in text), 1)
        return _unreadable(shown, f"cannot decode: {exc.msg}; {DECODE_HELP}", line)
    result = codemod_source(source, options, shown, Path(path), partial=partial, explain=explain)
    if not result.changed:
        return result
    assert result.new_source is not None
    try:
        new_data = encode_source(result.new_source, encoding)
        if write:
            write_file(path, new_data)
    except CannotEncode as exc:
        _unchanged(result, f"cannot rewrite: {exc}; the file is unchanged")
    except WriteRefused as exc:
        _unchanged(result, f"cannot write: {exc.reason}; the file is unchanged")
    return result


def _unreadable(path: str, reason: str, line: int = 0) -> CodemodResult:
    result = CodemodResult(path, "")
    result.problems.append(Message(path, line, 1 if line else 0, reason))
    return result


def _unchanged(result: CodemodResult, reason: str) -> None:
    result.problems.append(Message(result.path, 0, 0, reason))
    result.new_source = None
    result.applied = []


def unified_diff(result: CodemodResult) -> str:
    """The change to one file as a unified diff (empty when it did not change)."""
    if not result.changed:
        return ""
    assert result.new_source is not None
    return unified(result.source, result.new_source, result.path)
