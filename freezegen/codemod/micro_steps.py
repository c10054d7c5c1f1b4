"""What makes a loop's passes micro-steps that gradient accumulation can count: each pass
draws a new micro-batch (a loader, a fetch, data indexed by the counter, a random draw the loss
reads), and no pass ends above the update, which would leave a window without its step."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod.endless import endless_count
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    statement_targets,
    used_names,
)
from freezegen.codemod.transform import Notes


def refuse_exits_above(
    script: Script, loop: cst.For | cst.While, body: list[cst.BaseStatement], update: list[int]
) -> None:
    """Raise CannotAct at a ``continue`` or ``break`` of the loop in or above the statements
    that update the model (``body[i]`` for ``i`` in ``update``): the counter counts every
    pass, so a pass that ends there counts as a micro-step without its backward, or ends a
    window without its update (the next window then sums two windows' gradients over one
    divisor), and a ``for`` loop's break leaves the micro-batches since the last update
    unstepped (a ``while`` loop has no length to promise otherwise; its note says so)."""
    index = {id(s): i for i, s in enumerate(body)}
    exits: list[tuple[type[cst.Continue] | type[cst.Break], str]] = [(cst.Continue, "continue")]
    if isinstance(loop, cst.For):  # a `while` loop stops by a break: pass_counter says so
        exits.append((cst.Break, "break"))
    for kind, word in exits:
        exit_ = script.exits_of(loop, kind)
        if exit_ is None:
            continue
        top = next(i for a in script.ancestors(exit_) if (i := index.get(id(a))) is not None)
        if top <= update[-1]:
            raise CannotAct(
                exit_,
                f"this `{word}` can end a pass of the loop before its optimizer step (line "
                f"{script.line(body[update[0]])}): the pass would count as a micro-step "
                "without its backward, or a window would end without its update; only a "
                f"`{word}` below the step keeps the windows whole",
            )


def note_break_below(script: Script, loop: cst.For | cst.While, n: int, notes: Notes) -> None:
    """Say, at a ``for`` loop's ``break`` below its update (``if args.dry_run: break``), that
    it can end the loop mid-window: the micro-batches since the last update are then not
    stepped (a dry run of one batch makes no update at all). A ``while`` loop's note says it
    for every way it stops (pass_counter.note_passes)."""
    stop = script.exits_of(loop, cst.Break) if isinstance(loop, cst.For) else None
    if stop is not None:
        notes.append(
            (
                stop,
                "this `break` can end the loop in the middle of a window: the micro-batches "
                f"since the last update (up to {n - 1}) are then not stepped, so a run that "
                f"breaks after fewer than {n} micro-batches makes no update",
            )
        )


_FETCH = ("next", "batch", "sample")
"""Callee names that draw a fresh batch (next(iterator), get_batch(split), sample(...))."""


_RANDOM_DRAWS = (
    "torch.rand",
    "torch.randn",
    "torch.randint",
    "torch.rand_like",
    "torch.randn_like",
    "torch.randint_like",
    "torch.normal",
    "torch.randperm",
)
"""torch's random draws: synthetic data made anew on each pass is a new micro-batch."""


def refuse_unless_micro_steps(script: Script, loop: cst.For | cst.While, back: Backward) -> None:
    """Raise CannotAct unless each pass of ``loop`` sees a new micro-batch: it iterates a
    loader (``loader``, ``enumerate(loader)``, ``tqdm(loader)``), or a ``range`` or an endless
    ``itertools.count(k)`` whose body draws a batch, indexes data with the counter, draws random
    data that the loss is computed from, or plays an episode in an environment. A ``while``
    loop must draw its batch (or random data the loss reads) in a statement that every pass
    runs: not under an ``if``, nor in a loop of its own. A
    full-batch trainer's epoch loop is no micro-step loop: accumulating over it only divides
    the number of updates by N."""
    if isinstance(loop, cst.While):
        test = [loop.test] if isinstance(loop.test, cst.Call) else []
        every_pass = [*test, *script.calls_in(loop.test)]  # while (x := next(it, None)) ...
        every_pass += [c for s in _every_pass(loop.body.body) for c in script.calls_in(s)]
        if _fetches(every_pass) or _draws_random_inputs(script, loop, back):
            return
        raise CannotAct(
            loop,
            f"the loop `while {script.code(loop.test)}:` draws no new batch in a statement that "
            "every pass runs (a next(...), get_batch-style or random draw outside any `if` or "
            "inner loop), so its passes may reuse the same data; accumulating over it would "
            "only cut the number of updates",
        )
    it = loop.iter
    while isinstance(it, cst.Call) and it.args and not _is_range(it):
        it = it.args[0].value  # enumerate(...), tqdm(...), iter(...)
    if not _is_range(it) and endless_count(script, loop) is None:
        return
    target = dotted(loop.target) if isinstance(loop.target, cst.Name) else None
    if _fetches(script.calls_in(loop.body)) or _plays_episodes(script, loop):
        return
    if target is not None and _indexes_with(loop.body, target):
        return
    if _draws_random_inputs(script, loop, back):
        return
    raise CannotAct(
        loop,
        f"the loop `for {script.code(loop.target)} in {script.code(loop.iter)}` reuses the same "
        "data on every pass (a full-batch trainer?); accumulating over it would only cut the "
        "number of updates: use a loop over micro-batches",
    )


def _plays_episodes(script: Script, loop: cst.For | cst.While) -> bool:
    """True when each pass of ``loop`` plays a new episode in an environment: it calls
    ``env.reset(...)`` in a statement every pass runs, and ``env.step(...)`` on the same object
    (gym's API; a policy-gradient script's loop over episodes)."""
    every_pass = [c for s in _every_pass(loop.body.body) for c in script.calls_in(s)]
    reset = {
        dotted(c.func.value)
        for c in every_pass
        if isinstance(c.func, cst.Attribute) and c.func.attr.value == "reset"
    }
    return any(
        isinstance(c.func, cst.Attribute)
        and c.func.attr.value == "step"
        and dotted(c.func.value) in reset - {None}
        for c in script.calls_in(loop.body)
    )


def _fetches(calls: list[cst.Call]) -> bool:
    """True when one of ``calls`` draws a batch by its name (see :data:`_FETCH`)."""
    return any(
        any(word in (dotted(call.func) or "").rpartition(".")[2].lower() for word in _FETCH)
        for call in calls
    )


def _every_pass(stmts: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
    """The statements among ``stmts`` that run on every pass that reaches them: the simple
    ones, and those inside a ``with`` block or a ``try`` body (the handlers only run on an
    error: a ``StopIteration`` handler that re-creates the iterator, for one)."""
    out: list[cst.BaseStatement] = []
    for stmt in stmts:
        if isinstance(stmt, cst.SimpleStatementLine):
            out.append(stmt)
        elif isinstance(stmt, (cst.With, cst.Try, cst.TryStar)):
            out += _every_pass(stmt.body.body)
    return out


def _draws_random_inputs(script: Script, loop: cst.For | cst.While, back: Backward) -> bool:
    """True when the loss is computed from a torch random draw that every pass of the loop
    makes (``x = torch.randint(0, vocab, (b, t))``, ``loss = model(x)``): def-use up from the
    loss, over the statements above the backward call that every pass runs (an autocast block's
    too: once precision ran, the draw and the forward pass sit in one), and for a step function
    the loop body that calls it."""
    block = list(back.block.body)
    above = block[: next(i for i, s in enumerate(block) if s is back.stmt)]
    stmts = above if back.block is loop.body else [*loop.body.body, *above]
    read = used_names(back.loss)
    for line in reversed(_every_pass(stmts)):
        assigned = statement_targets(line)
        if not {name.partition(".")[0] for name in assigned} & read:
            continue
        small = line.body[0] if isinstance(line, cst.SimpleStatementLine) else None
        if isinstance(small, cst.Assign) and isinstance(small.value, cst.Call):
            callee = script.names.qualified(small.value.func) or dotted(small.value.func) or ""
            if callee in _RANDOM_DRAWS:
                return True
        read |= used_names(line)
    return False


def _is_range(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and dotted(expr.func) == "range"


def _indexes_with(body: cst.CSTNode, name: str) -> bool:
    """True when ``body`` subscripts something with an expression using ``name``."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_SubscriptElement(self, node: cst.SubscriptElement) -> None:
            nonlocal found
            found = found or name in used_names(node)

    body.visit(_Find())
    return found
