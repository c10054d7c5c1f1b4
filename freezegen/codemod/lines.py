"""A training call that shares its line with other statements (``loss.backward(); opt.step()``,
``model.train(); opt.zero_grad()``) gets a line of its own before the transforms run, and every
line they report is mapped back to the file's. So does a loss computed inside the backward
statement: ``loss_fn(out, y).backward()`` becomes ``loss = loss_fn(out, y)`` and
``loss.backward()``, so that autocast can cover the loss and leave the backward call outside.

The transforms place edits statement by statement (the step under a window's guard, zero_grad
on a window's first micro-step, autocast above the backward call), so each of those calls must
be a statement line of its own. Splitting
the line is the edit a user would make (ruff's E702 fix makes it too); it is part of the output
only when a transform acts, and messages keep naming the lines and columns of the file as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check.names import dotted


@dataclass(frozen=True)
class LineMap:
    """Where each line of the split module was in the file."""

    moved: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Split module line -> (file line, columns to add) for each piece of a split line."""
    shifts: tuple[tuple[int, int], ...] = ()
    """(last split module line of a split, lines it added), in order: later lines move up."""

    def __bool__(self) -> bool:
        return bool(self.moved)

    def where(self, line: int, column: int) -> tuple[int, int]:
        """The file's line and column for a position in the split module."""
        if line in self.moved:
            original, delta = self.moved[line]
            return original, column + delta
        return line - sum(added for last, added in self.shifts if line > last), column


def split_training_lines(module: cst.Module) -> tuple[cst.Module, LineMap]:
    """``module`` with each line holding a training call (backward, step, zero_grad, clipping)
    among other statements split into one line per statement, and the map back; ``module``
    itself and an empty map when there is none."""
    if ";" not in module.code and ").backward(" not in module.code:
        return module, LineMap()
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    splitter = _Splitter(positions, _unused_name(module, "loss"))
    new = module.visit(splitter)
    if not splitter.splits:
        return module, LineMap()
    moved: dict[int, tuple[int, int]] = {}
    shifts: list[tuple[int, int]] = []
    added = 0
    for line, indent, columns in splitter.splits:  # in source order
        first = line + added
        for k, column in enumerate(columns):
            moved[first + k] = (line, column - indent)
        shifts.append((first + len(columns) - 1, len(columns) - 1))
        added += len(columns) - 1
    return new, LineMap(moved, tuple(shifts))


_TRAINING_CALLS = ("backward", "step", "zero_grad", "clip_grad_norm_", "clip_grad_value_")


def _is_training_call(small: cst.BaseSmallStatement) -> bool:
    return (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and (dotted(small.value.func) or "").rpartition(".")[2] in _TRAINING_CALLS
    )


def _inline_loss(small: cst.BaseSmallStatement) -> cst.Call | None:
    """The call computing the loss in ``loss_fn(out, y).backward()``: the receiver of a
    ``backward`` call when it is itself a call; None otherwise, and for ``scaler.scale(loss)``
    (a loss already computed, scaled)."""
    if not (
        isinstance(small, cst.Expr)
        and isinstance(small.value, cst.Call)
        and isinstance(small.value.func, cst.Attribute)
        and small.value.func.attr.value == "backward"
        and isinstance(small.value.func.value, cst.Call)
    ):
        return None
    receiver = small.value.func.value
    if (dotted(receiver.func) or "").rpartition(".")[2] == "scale":
        return None
    return receiver


def _unused_name(module: cst.Module, base: str) -> str:
    """``base``, or ``base_1``, ``base_2``, ...: the first that no name in ``module`` spells,
    so a new variable can neither shadow nor be shadowed anywhere in the file."""
    taken: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            taken.add(node.value)

    module.visit(_Names())
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


class _Splitter(cst.CSTTransformer):
    def __init__(self, positions: object, loss: str) -> None:
        super().__init__()
        self.positions = positions
        self.loss = loss
        """The name a loss computed inside the backward statement is bound to."""
        self.splits: list[tuple[int, int, list[int]]] = []
        """(file line, column of the line's first statement, column of each statement)."""

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        if len(original_node.body) == 1 and (loss := _inline_loss(updated_node.body[0])):
            start = self.positions[original_node.body[0]].start  # type: ignore[index]
            self.splits.append((start.line, start.column, [start.column, start.column]))
            backward = updated_node.body[0]
            assert isinstance(backward, cst.Expr) and isinstance(backward.value, cst.Call)
            func = backward.value.func
            assert isinstance(func, cst.Attribute)
            name = cst.Name(self.loss)
            assign = cst.Assign(targets=[cst.AssignTarget(target=name)], value=loss)
            call = backward.with_changes(
                value=backward.value.with_changes(func=func.with_changes(value=name))
            )
            first = cst.SimpleStatementLine(body=[assign], leading_lines=updated_node.leading_lines)
            return cst.FlattenSentinel(
                [first, updated_node.with_changes(body=[call], leading_lines=[])]
            )
        if len(original_node.body) < 2 or not any(_is_training_call(s) for s in original_node.body):
            return updated_node
        starts = [self.positions[s].start for s in original_node.body]  # type: ignore[index]
        self.splits.append((starts[0].line, starts[0].column, [p.column for p in starts]))
        pieces = []
        last = len(updated_node.body) - 1
        for k, small in enumerate(updated_node.body):
            pieces.append(
                cst.SimpleStatementLine(
                    body=[small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)],
                    leading_lines=updated_node.leading_lines if k == 0 else [],
                    trailing_whitespace=(
                        updated_node.trailing_whitespace if k == last else cst.TrailingWhitespace()
                    ),
                )
            )
        return cst.FlattenSentinel(pieces)
