"""Accumulation over a ``while`` loop: a counter of the loop's passes, added by the codemod.

``while True: batch = next(it) ...`` has no length to read, so its passes are counted from 0 by
a fresh name set right above the loop and incremented first thing in each pass: no path
through a pass can skip it. The loss is divided by N, zero_grad runs on each window's first
pass and the update on its N-th. When the loop stops mid-window, the passes since the last
update are not stepped (there is no length to cut the last window to); the user is told so,
and told that the loop's own count of passes (``iter_num`` against ``max_iters``) now counts
micro-batches.
"""

from __future__ import annotations

from typing import TypeVar

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod import edits
from freezegen.codemod.accumulation import Window
from freezegen.codemod.script import CannotAct, Script, zeroes_only
from freezegen.codemod.transform import Notes

_Node = TypeVar("_Node", bound=cst.CSTNode)


def pass_window(
    script: Script,
    loop: cst.While,
    body: list[cst.BaseStatement],
    zeroes_first: bool,
    last: int,
    n: int,
    notes: Notes,
) -> Window:
    """The window of ``loop`` (whose ``body`` updates the model in statements up to index
    ``last``, and zeroes the gradients above its backward call when ``zeroes_first``), counted
    by a fresh counter of its passes; the notes say what changes for a run.

    Raises CannotAct where the loop may run again but its gradients are zeroed only after an
    update: what a last, partial window left would be added to the next run's first window.
    (A ``continue`` above the update is refused for every loop, in accumulation.py.)
    """
    again = None if zeroes_first else _may_run_again(script, loop)
    if again is not None:
        zeroing = [s for s in script.boundary_statements(loop) if zeroes_only(s)]
        after = f"only after an update (line {script.line(zeroing[0])})" if zeroing else "nowhere"
        raise CannotAct(
            zeroing[0] if zeroing else loop,
            f"this `while` loop may run again ({again}) and its gradients are zeroed {after}: "
            "what a last, partial window left when it stopped would be added to the next run's "
            "first window; zero them above the backward call instead",
        )
    counter = script.fresh(("micro_step", "micro_batch"), script.function_of(loop))
    note_passes(script, loop, n, notes)
    init = edits.statement(f"{counter} = 0\n")
    increment = edits.statement(f"{counter} += 1\n")

    def rebuild(new_body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        counted = loop.body.with_changes(body=[increment, *new_body])
        return [
            init.with_changes(leading_lines=loop.leading_lines),
            loop.with_changes(leading_lines=(), body=counted),
        ]

    return Window(
        first=f"{counter} % {n} == 1",
        last=f"{counter} % {n} == 0",
        accumulating=f"{counter} % {n} != 0",
        size=str(n),
        rebuild=rebuild,
    )


def _may_run_again(script: Script, loop: cst.While) -> str | None:
    """Why ``loop`` may be entered more than once, when it may: a loop around it, or a function
    around it that is a method, is not called in this file, or is called more than once or
    inside a loop. None for a loop that runs once: at module level, or in a function called
    once from module level."""
    outer = script.loop_of(loop)
    if outer is not None:
        return f"inside the loop at line {script.line(outer)}"
    function = script.function_of(loop)
    if function is None:
        return None
    name = function.name.value
    if isinstance(script.parents.get(id(script.block_of(function))), cst.ClassDef):
        return f"in the method {name}(), which may be called again"
    calls = [c for c in script.calls if (dotted(c.func) or "").rpartition(".")[2] == name]
    if not calls:
        return f"in {name}(), which this file does not call"
    if len(calls) > 1:
        return f"in {name}(), called {len(calls)} times"
    (call,) = calls
    if script.function_of(call) is not None or script.loop_of(call) is not None:
        return f"in {name}(), called at line {script.line(call)}, which may run again"
    return None


def _top_index(script: Script, body: list[cst.BaseStatement], node: cst.CSTNode) -> int:
    """The index in ``body`` of the statement holding ``node``."""
    index = {id(s): i for i, s in enumerate(body)}
    return next(i for a in script.ancestors(node) if (i := index.get(id(a))) is not None)


def note_passes(script: Script, loop: cst.While, n: int, notes: Notes) -> None:
    """Say what accumulating over the passes of ``loop`` changes for a run: the micro-batches
    since the last update are not stepped when the loop stops, and a run of as many passes
    makes 1/n as many updates; name the count of passes (``self.iter_num += 1``) that the loop's
    exit test reads (``while step < max_steps``, ``if iter_num >= max_iters: break``) there."""
    notes.append(
        (
            loop,
            "this `while` loop has no length to read: when it stops, the micro-batches since "
            "its last update are not stepped; and each pass is now one micro-batch, not one "
            f"update, so as many passes make 1/{n} as many optimizer updates",
        )
    )
    counters = {
        name
        for node in _own(script, loop, cst.AugAssign)
        if isinstance(node.operator, cst.AddAssign) and (name := dotted(node.target)) is not None
    }
    tests = [loop.test]
    for stop in _own(script, loop, cst.Break):
        test = next((a for a in script.ancestors(stop) if isinstance(a, cst.If)), None)
        if test is not None and script.inside(test, loop):
            tests.append(test.test)
    for test in tests:
        counter = next((name for name in _dotted_names(test) if name in counters), None)
        if counter is not None:
            notes.append(
                (
                    test,
                    f"{counter} counts the passes of the `while` loop that this test stops, and "
                    f"a pass is now one micro-batch: the run stops after 1/{n} as many optimizer "
                    f"updates (and what reads {counter}, a learning-rate schedule for one, moves "
                    f"{n} times as fast per update); multiply its limit by {n} to keep them",
                )
            )
            return


def _own(script: Script, loop: cst.While, kind: type[_Node]) -> list[_Node]:
    """The nodes of ``kind`` in ``loop``'s body that belong to ``loop`` itself (not to a loop,
    function or class nested in it), in source order."""
    found: list[_Node] = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, kind) and script.loop_of(node) is loop:
                found.append(node)
            return True

    loop.body.visit(_Find())
    return found


def _dotted_names(expr: cst.BaseExpression) -> list[str]:
    """Every name and attribute chain that ``expr`` reads (``self.iter_num``, ``max_iters``)."""
    found: list[str] = []

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.append(node.value)

        def visit_Attribute(self, node: cst.Attribute) -> None:
            name = dotted(node)
            if name is not None:
                found.append(name)

    expr.visit(_Find())
    return found
