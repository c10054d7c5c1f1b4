"""A one-off forward and backward pass that is no training step: llm.c's reference pass, run
once before the optimizer is built to write the model, its outputs and every parameter's
gradient for its C tests.

Such a backward call is told apart from the training one by control-flow order, not by its
look: it sits in no loop, it provably runs before the optimizer is built (following calls to
functions of the file), and the training loop zeroes the gradients before each of its own
backward calls, so no optimizer step ever sees what it left. The step transforms then act on
the training backward alone (no autocast for the reference pass: what it writes stays fp32),
and the freeze drops the gradients the pass left on the parameters it freezes.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod.placement import runs_before_calls
from freezegen.codemod.script import Backward, CannotAct, Script, expression_call, zeroes_only


@dataclass(frozen=True)
class ReferencePasses:
    """The backward calls of a script that are one-off passes before training (``passes``),
    or why one that looks like it cannot be set apart (``refusal``)."""

    passes: tuple[Backward, ...] = ()
    refusal: CannotAct | None = None


def reference_passes(script: Script, found: list[Backward]) -> ReferencePasses:
    """The one-off passes among the backward calls ``found``: those in no loop that run before
    the optimizer is built while at least one other backward call remains to train. Empty when
    there are none, when a training backward is not preceded by a zero_grad (its first step
    would apply the one-off pass's gradients too), or when another backward outside any loop
    runs after the optimizer is built: ``refusal`` then says why, at that backward call."""
    if len(found) < 2:
        return ReferencePasses()
    try:
        anchor = script.optimizer.anchor
    except CannotAct:
        return ReferencePasses()
    early = [b for b in found if b.loop is None and runs_before_calls(script, b.stmt, anchor)]
    training = [b for b in found if all(b is not e for e in early)]
    if not training:
        return ReferencePasses()
    late = next((b for b in training if b.loop is None), None)
    if late is not None and any(b.loop is not None for b in training):
        return ReferencePasses(
            refusal=CannotAct(
                late.call,
                "this backward call runs outside the training loop, but not before the "
                f"optimizer is built (line {script.line(anchor)}): its gradients may reach an "
                "optimizer step, or change what a training step sees; the codemod sets apart "
                "one-off passes that run before the optimizer is built",
            )
        )
    if not early:
        return ReferencePasses()
    unzeroed = next((t for t in training if not _zeroed_before(script, t)), None)
    if unzeroed is not None:
        return ReferencePasses(
            refusal=CannotAct(
                early[0].call,
                "this backward call runs once, before the optimizer is built, but the training "
                f"backward at line {script.line(unzeroed.call)} has no zero_grad() above it in "
                "its loop, so the first optimizer step would also apply the gradients this "
                "pass leaves; zero the gradients before the training backward",
            )
        )
    return ReferencePasses(tuple(early))


def _zeroed_before(script: Script, back: Backward) -> bool:
    """True when a ``*.zero_grad()`` statement comes before ``back`` in a block of its function
    that holds it (the loop's body, or above the loop): it runs before each backward call, the
    first one included."""
    child: cst.CSTNode = back.stmt
    for ancestor in script.ancestors(back.stmt):
        if isinstance(ancestor, (cst.Module, cst.IndentedBlock)):
            for stmt in ancestor.body:
                if stmt is child:
                    break
                call = expression_call(stmt)
                if call is not None and (dotted(call.func) or "").endswith(".zero_grad"):
                    return True
                if _zeroes_on_first_pass(script, stmt):
                    return True
        if isinstance(ancestor, (cst.FunctionDef, cst.Lambda)):
            return False
        child = ancestor
    return False


def _zeroes_on_first_pass(script: Script, stmt: cst.CSTNode) -> bool:
    """True for ``if step % N == 0: optimizer.zero_grad()`` (the accumulation's own, on a
    window's first micro-step) in the body of a loop whose ``step`` counts from 0:
    ``for step, batch in enumerate(loader)`` or ``for step in range(n)``. It zeroes before
    the loop's first backward call."""
    if not isinstance(stmt, cst.If) or stmt.orelse is not None or not zeroes_only(stmt.body):
        return False
    test = stmt.test
    if not (
        isinstance(test, cst.Comparison)
        and len(test.comparisons) == 1
        and isinstance(test.comparisons[0].operator, cst.Equal)
        and script.code(test.comparisons[0].comparator) == "0"
        and isinstance(test.left, cst.BinaryOperation)
        and isinstance(test.left.operator, cst.Modulo)
        and isinstance(test.left.left, cst.Name)
    ):
        return False
    loop = script.loop_of(stmt)
    if not isinstance(loop, cst.For) or not isinstance(loop.iter, cst.Call):
        return False
    counter, callee, args = test.left.left.value, dotted(loop.iter.func), loop.iter.args
    if callee == "range" and len(args) == 1 and isinstance(loop.target, cst.Name):
        return loop.target.value == counter
    return (
        callee == "enumerate"
        and len(args) == 1
        and isinstance(loop.target, cst.Tuple)
        and isinstance(loop.target.elements[0].value, cst.Name)
        and loop.target.elements[0].value.value == counter
    )
