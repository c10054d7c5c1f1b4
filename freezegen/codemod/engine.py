"""Rewrite one file: prefilter, CPython's parse and the limits of :mod:`freezegen.check.gate`,
FG501's fix, one libcst parse, every transform, a parse of the result.

All or nothing by default: when any requested transform cannot act, every reason is reported
(located in the original file) and the file is left as it was. With ``partial``, the transforms
that can act are applied and each one that cannot is reported with its reason. A transform the
script already does with a mechanism of its own whose value only the user can set (a config
file, the command line) is kept: nothing is added, and an action says what to set. Output that
does not parse is never returned.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check import gate
from freezegen.codemod.accumulation import accumulation
from freezegen.codemod.explain import Seen, explain_module
from freezegen.codemod.lines import LineMap, split_training_lines
from freezegen.codemod.options import CodemodOptions
from freezegen.codemod.precision import precision
from freezegen.codemod.script import CannotAct, Script, YoursToSet
from freezegen.codemod.setup import checkpointing, freeze, lora, trainable_only
from freezegen.codemod.transform import Notes, Transform
from freezegen.codemod.versions import Pins, project_pins, too_old

TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    ("lora", lora),
    ("freeze", freeze),
    ("activation checkpointing", checkpointing),
    ("trainable-only optimizer", trainable_only),
    ("precision", precision),
    ("accumulation", accumulation),
)
"""In the order they run: setup above the optimizer first, then the step itself."""
PER_BACKWARD = ("precision", "accumulation")
"""The transforms that act at a backward call: once per backward call when each runs in a
training loop of its own (:attr:`Script.backward_count`), the others once per file."""
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
    """Why a requested transform cannot act (the file is then unchanged unless ``partial``),
    or why the file could not be rewritten at all."""
    notes: list[Message] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)
    """The requested transforms that could not act (their reasons are in ``problems``)."""
    kept: list[str] = field(default_factory=list)
    """The requested transforms the script already does its own way, left to the user to set
    (what to set is in ``actions``): not refusals, and nothing of theirs is added."""
    actions: list[Message] = field(default_factory=list)
    """What the user must set for each kept transform to do what was asked, located."""
    seen: list[Seen] = field(default_factory=list)
    """What the transforms see in the file (asked for with ``explain``)."""
    skipped: bool = False
    """True when the prefilter ruled the file out (no ``backward`` in it)."""

    @property
    def changed(self) -> bool:
        return self.new_source is not None and self.new_source != self.source


def codemod_source(
    source: str,
    options: CodemodOptions,
    path: str = "<string>",
    origin: Path | None = None,
    *,
    partial: bool = False,
    explain: bool = False,
) -> CodemodResult:
    """Rewrite ``source`` with ``options``; never raises for the file's content.

    ``origin``: the file ``source`` was read from, whose project's pins decide version-dependent
    edits (without it, no version is known). With ``partial``, a transform that cannot act is
    left out (and reported) instead of leaving the whole file unchanged; with ``explain``,
    ``seen`` holds the map of what was found.
    """
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
        return _rewrite(result, options, origin, partial, explain)
    except (RecursionError, MemoryError):  # the gate's limits leave room; this is a backstop
        message = "too complex for the libcst parser (nesting or size); please report this"
        return CodemodResult(path, source, problems=[Message(path, 0, 0, message)])


def _rewrite(
    result: CodemodResult,
    options: CodemodOptions,
    origin: Path | None,
    partial: bool,
    explain: bool,
) -> CodemodResult:
    path, source = result.path, result.source
    pins = project_pins(origin) if origin is not None else Pins()
    text, notes = _modernise_amp(source, path, pins)
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        message = f"syntax error: {exc.message}; only files that parse are rewritten"
        result.problems.append(Message(path, exc.editor_line, exc.editor_column + 1, message))
        return result
    module, lines = split_training_lines(module)
    if explain:
        result.seen = explain_module(module, pins, lines)
    acting: Notes = []
    kept: list[Refusal] = []
    problems = _preflight(module, options, acting, pins, kept, lines)
    result.not_applied = [name for name, _, _ in problems]  # in TRANSFORMS order
    result.kept = list(dict.fromkeys(name for name, _, _ in kept))  # once per transform
    if partial or not problems:  # what an edit says is only said when the edit is made
        notes += acting
    if problems or notes or kept:
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)

        def locate(node: cst.CSTNode | None, text: str) -> Message:
            if node is None:
                return Message(path, 0, 0, text)
            start = positions[node].start
            line, column = lines.where(start.line, start.column)
            return Message(path, line, column + 1, text)

        result.problems = [locate(n, m) for n, m in _said_once(problems)]
        result.notes = [locate(n, m) for n, m in notes]
        result.actions = [locate(n, f"keeping the script's own {k}: {m}") for k, n, m in kept]
    if problems and not partial:
        return result
    if text != source:
        result.applied.append("torch.amp (FG501)")
    for name, transform in TRANSFORMS:
        if name in result.not_applied or name in result.kept:
            continue
        try:
            new = module
            for focus in range(_sites(name, Script(module, pins))):
                new = transform(Script(new, pins, focus=focus), options, []) or new
        except CannotAct as exc:
            if not partial:  # the preflight passed on the same tree, so this is a bug of ours
                raise AssertionError(f"{name} could act on the original but not later") from exc
            # the transforms before it changed the tree: report, never guess
            result.not_applied.append(name)
            message = f"cannot add {name} after {', '.join(result.applied)}: {exc.message}"
            result.problems.append(Message(path, 0, 0, message))
            continue
        if new.code != module.code:
            module = new
            result.applied.append(name)
    if (partial or lines) and not result.applied:  # a split line alone is no rewrite
        return result
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


Refusal = tuple[str, cst.CSTNode | None, str]
"""The transform's name, the node the reason is about, the reason."""


def _preflight(
    module: cst.Module,
    options: CodemodOptions,
    notes: Notes,
    pins: Pins,
    kept: list[Refusal],
    lines: LineMap,
) -> list[Refusal]:
    """Every transform that cannot act on the original tree, with its reason; those the script
    does its own way, with what the user must set, go to ``kept``; the notes of those that can
    act are added to ``notes`` (a refused or kept transform's are dropped)."""
    script = Script(module, pins, lines)
    problems: list[Refusal] = []
    for name, transform in TRANSFORMS:
        mine: Notes = []
        outcomes: list[tuple[str, cst.CSTNode | None, str]] = []
        for focus in range(_sites(name, script)):
            try:
                transform(Script(module, pins, lines, focus) if focus else script, options, mine)
            except YoursToSet as exc:
                outcomes.append(("kept", exc.node, exc.message))
            except CannotAct as exc:
                outcomes.append(("refused", exc.node, exc.message))
            else:
                outcomes.append(("acts", None, ""))
        refused = [(name, n, m) for kind, n, m in outcomes if kind == "refused"]
        own = [(name, n, m) for kind, n, m in outcomes if kind == "kept"]
        if own and len(own) < len(outcomes) and not refused:
            # one loop keeps the script's own mechanism, another would get the codemod's:
            # two mechanisms for one setting is what the codemod never adds
            _, node, _ = own[0]
            refused = [
                (
                    name,
                    node,
                    "one training loop keeps the script's own mechanism here and another has "
                    "none; give them the same one",
                )
            ]
        if refused:
            problems += refused
        elif own:
            kept += own[:1] if len({m for _, _, m in own}) == 1 else own
        else:
            notes += mine
    return problems


def _sites(name: str, script: Script) -> int:
    """How many times transform ``name`` runs on ``script``: once per backward call for a
    step transform (:data:`PER_BACKWARD`), else once."""
    if name not in PER_BACKWARD:
        return 1
    try:
        return script.backward_count
    except CannotAct:
        return 1


def _said_once(problems: list[Refusal]) -> list[tuple[cst.CSTNode | None, str]]:
    """Each distinct reason (node and text) once, worded under the first transform it stops."""
    out: list[tuple[cst.CSTNode | None, str]] = []
    seen: list[tuple[cst.CSTNode | None, str]] = []
    for name, node, message in problems:
        if not any(n is node and m == message for n, m in seen):
            seen.append((node, message))
            out.append((node, f"cannot add {name}: {message}"))
    return out


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
