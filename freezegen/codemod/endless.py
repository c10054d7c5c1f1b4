"""Accumulation over a loop that never runs out: ``for batch_idx in itertools.count(1):``.

Such a loop ends only where its body leaves it (a ``break`` on convergence: pytorch/examples'
regression stops once its loss is below 1e-3, its REINFORCE once an episode's running reward
solves the task), never by exhausting what it iterates. So no last partial window is lost to
the end of an iterable, the case that makes an unsized iterable refused (accumulation.py): the
count itself numbers the micro-steps, and a window holds N of them. When the loop is left in
the middle of a window, the micro-batches since the last update are not stepped: the run ends
as if it had stopped up to N - 1 micro-batches earlier, with the model the last update left,
which is what a convergence test in that window measured (no update ran since). That is right
for a stop on convergence; flushing the window instead would take one more, smaller update
after the test said to stop. The user is told, at the ``break``.
"""

from __future__ import annotations

import libcst as cst

from freezegen.codemod.script import Script, simple_statements, statement_targets
from freezegen.codemod.transform import Notes


def endless_count(script: Script, loop: cst.For) -> tuple[str, str] | None:
    """For ``for NAME in itertools.count(k):`` (``k`` a literal, no step, ``NAME`` never
    reassigned in the body): the micro-step about to run, counted from 0, and the micro-steps
    done once it is, as expressions of ``NAME``; None for any other loop."""
    if not (
        isinstance(loop.target, cst.Name)
        and isinstance(loop.iter, cst.Call)
        and script.names.qualified(loop.iter.func) == "itertools.count"
    ):
        return None
    args = loop.iter.args
    if len(args) > 1 or any(a.star or (a.keyword and a.keyword.value != "start") for a in args):
        return None
    if args and not isinstance(args[0].value, cst.Integer):
        return None
    start = int(args[0].value.value, 0) if args else 0  # type: ignore[union-attr]
    name = loop.target.value
    if any(name in statement_targets(s) for s in simple_statements(loop.body)):
        return None
    return counted_from(name, start)


def counted_from(name: str, start: int) -> tuple[str, str]:
    """The micro-step counted from 0 and the micro-steps done once it is, for a loop counter
    ``name`` that counts from ``start`` (``enumerate(loader, 1)``, ``count(1)``)."""
    counter = name if start == 0 else f"({name} - {start})"
    done = f"{name} + {1 - start}" if start < 1 else name if start == 1 else f"{name} - {start - 1}"
    return counter, done


def note_endless_stop(script: Script, loop: cst.For, n: int, notes: Notes) -> None:
    """Say, at the ``break`` that leaves the endless ``loop`` (at the loop when it has none),
    what accumulation changes when the run stops: the window in flight is not stepped, and a
    run of as many passes makes 1/n as many updates."""
    stop = script.exits_of(loop, cst.Break)
    how = (
        "this `break` is how it stops: when it stops the loop"
        if stop is not None
        else "when the run stops"
    )
    notes.append(
        (
            stop if stop is not None else loop,
            f"`for {script.code(loop.target)} in {script.code(loop.iter)}` never runs out, and "
            f"{how} in the middle of a window, the micro-batches since the last update (up to "
            f"{n - 1}) are not stepped: the run ends as if it had stopped that many micro-"
            "batches earlier, with the model the last update left (the one a convergence test "
            "in that window measured); and each pass is now one micro-batch, not one update, "
            f"so as many passes make 1/{n} as many updates",
        )
    )
