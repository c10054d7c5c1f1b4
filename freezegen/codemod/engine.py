"""Rewrite one file: prefilter, CPython's parse and the limits of :mod:`freezegen.check.gate`,
FG501's fix, one libcst parse, every transform, a parse of the result.

All or nothing: when any requested transform cannot act, every reason is reported (located in
the original file) and the file is left as it was. Output that does not parse is never returned.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check import gate
from freezegen.codemod.accumulation import accumulation
from freezegen.codemod.options import CodemodOptions
from freezegen.codemod.precision import precision
from freezegen.codemod.script import CannotAct, Script
from freezegen.codemod.setup import checkpointing, freeze, trainable_only
from freezegen.codemod.transform import Notes, Transform
from freezegen.codemod.versions import Pins, project_pins, too_old

TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    ("freeze", freeze),
    ("activation checkpointing", checkpointing),
    ("trainable-only optimizer", trainable_only),
    ("precision", precision),
    ("accumulation", accumulation),
)
"""In the order they run: setup above the optimizer first, then the step itself."""
PREFILTER = b"backward"
"""A file without this string has no training step to rewrite; it is not parsed."""


@dataclass(frozen=True)
class Message:
    """Something the codemod says about a file, located (line 0: the whole file)."""

    path: str
    line: int
    col: int
    text: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.col}" if self.line else self.path
        return f"{where}: {self.text}"


@dataclass
class CodemodResult:
    """One file's outcome: its new text when it changed, or why it could not be changed."""

    path: str
    source: str
    new_source: str | None = None
    problems: list[Message] = field(default_factory=list)
    """Why a requested transform cannot act (the file is then unchanged), or why it failed."""
    notes: list[Message] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    skipped: bool = False
    """True when the prefilter ruled the file out (no ``backward`` in it)."""

    @property
    def changed(self) -> bool:
        return self.new_source is not None and self.new_source != self.source


def codemod_source(
    source: str, options: CodemodOptions, path: str = "<string>", origin: Path | None = None
) -> CodemodResult:
    """Rewrite ``source`` with ``options``; never raises for the file's content. ``origin``:
    the file ``source`` was read from, whose project's pins decide version-dependent edits
    (without it, no version is known)."""
    result = CodemodResult(path, source)
    if PREFILTER not in source.encode("utf-8", "surrogatepass"):
        result.skipped = True
        result.problems.append(Message(path, 0, 0, "no loss.backward() call found"))
        return result
    try:
        gate.bound(gate.parse(source))
    except gate.Rejected as exc:
        result.problems.append(Message(path, exc.line, exc.col, f"{exc.message} ({exc.help})"))
        return result
    try:
        return _rewrite(result, options, origin)
    except (RecursionError, MemoryError):  # the gate's limits leave room; this is a backstop
        message = "too complex for the libcst parser (nesting or size); please report this"
        return CodemodResult(path, source, problems=[Message(path, 0, 0, message)])


def _rewrite(result: CodemodResult, options: CodemodOptions, origin: Path | None) -> CodemodResult:
    path, source = result.path, result.source
    pins = project_pins(origin) if origin is not None else Pins()
    text, notes = _modernise_amp(source, path, pins)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        message = f"syntax error: {exc.message}; only files that parse are rewritten"
        result.problems.append(Message(path, exc.editor_line, exc.editor_column + 1, message))
        return result
    problems = _preflight(module, options, notes, pins)
    if problems or notes:
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        result.problems = [_locate(path, positions, n, m) for n, m in problems]
        result.notes = [_locate(path, positions, n, m) for n, m in notes]
    if problems:
        return result
    if text != source:
        result.applied.append("torch.amp (FG501)")
    for name, transform in TRANSFORMS:
        try:
            new = transform(Script(module, pins), options, [])
        except CannotAct as exc:  # the preflight passed, so this is a bug of ours
            raise AssertionError(f"{name} could act on the original but not later: {exc}") from exc
        if new is not None and new.code != module.code:
            module = new
            result.applied.append(name)
    new_text = module.code
    try:
        cst.parse_module(new_text)
        ast.parse(new_text, path)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:
        message = f"the rewrite does not parse, so the file is unchanged: {exc} (a freezegen bug)"
        result.problems.append(Message(path, 0, 0, message))
        result.applied = []
        return result
    result.new_source = new_text
    return result


def _preflight(module: cst.Module, options: CodemodOptions, notes: Notes, pins: Pins) -> Notes:
    """Every reason a requested transform cannot act on the original tree."""
    script = Script(module, pins)
    problems: Notes = []
    for name, transform in TRANSFORMS:
        try:
            transform(script, options, notes)
        except CannotAct as exc:
            problem = (exc.node, f"cannot add {name}: {exc.message}")
            if all(
                p[0] is not problem[0] or p[1].split(": ", 1)[1] != exc.message for p in problems
            ):
                problems.append(problem)
    return problems


def _locate(path: str, positions: object, node: cst.CSTNode | None, text: str) -> Message:
    if node is None:
        return Message(path, 0, 0, text)
    where = positions[node].start  # type: ignore[index]
    return Message(path, where.line, where.column + 1, text)


def _modernise_amp(source: str, path: str, pins: Pins) -> tuple[str, Notes]:
    """``source`` with check's FG501 fix applied (torch.cuda.amp -> torch.amp) and no notes;
    or ``source`` unchanged and a note naming the pin, when the project's pins admit a torch
    without what the fix writes (torch.amp.autocast: 1.10; torch.amp.GradScaler: 2.3)."""
    from freezegen.check import check_source
    from freezegen.rules import RuleOptions

    fixed = check_source(source, path, RuleOptions(select=("FG501",)), fix=True).fixed_source
    if fixed is None or fixed == source:
        return source, []
    minimum = "2.3" if "GradScaler" in source else "1.10"
    why = too_old(pins, "torch", minimum, "check's FG501 fix (torch.cuda.amp -> torch.amp)")
    if why is not None:
        return source, [(None, f"{why}; torch.cuda.amp is kept")]
    return fixed, []
