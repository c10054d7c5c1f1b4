"""Accumulation where the backward call sits in a step function that a loop elsewhere calls.

Two shapes of real trainers: a class whose ``step`` (``training_step``, ``train_step``...)
method holds backward while the loop over batches lives in ``fit``/``train``, and a plain
``train_step(model, batch, optimizer)`` called from a loop of the same file. The step function
cannot count micro-steps itself, so the count comes from the one loop that calls it:

- a method keeps it on the instance: the caller sets ``self._micro_step = 0`` and
  ``self._micro_steps = len(loader)`` above its loop, the method counts ``self._micro_step``;
- a plain function is handed it: ``train_step(..., micro_step=i, micro_steps=len(loader))``
  with the index from the caller's ``enumerate``.

Either way the window arithmetic is the loop transform's: the loss is divided by the size of
its window (the last partial window of an epoch is smaller), zero_grad runs on a window's first
micro-step, step/clip/zero_grad below the backward call on its last, and the last micro-step
of each pass over the loader closes a partial window.

The step may sit under ``if train:`` (a parameter; the method also serves evaluation), as
long as the caller's loop hands it the same value on every pass, and may be one AMP switch
(:attr:`Script.amp_switch`: ``if use_amp: scaler.scale(loss).backward() ... else:
loss.backward() ...``): each branch gets the window (its loss divided, its update on the
window's last micro-step) and counts the micro-step, whichever runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from freezegen.check.loops import has_modulo, modulo_operands
from freezegen.check.names import dotted
from freezegen.codemod import edits
from freezegen.codemod.accumulation import (  # the loop transform's window rules
    _boundary_indices,
    _counter,
    _divide,
    _length,
    _note_scheduler,
)
from freezegen.codemod.endless import endless_count, note_endless_stop
from freezegen.codemod.fabric import argument_for
from freezegen.codemod.micro_steps import note_break_below, refuse_unless_micro_steps
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    simple_statements,
    statement_targets,
    target_names,
    zeroes_only,
)
from freezegen.codemod.transform import Notes


def accumulate_called_step(
    script: Script, back: Backward, n: int, notes: Notes
) -> cst.Module | None:
    """The module with ``back``'s function accumulating over ``n`` calls from its loop.

    Returns None when the function already steps every ``n`` micro-steps (this transform's own
    output); raises CannotAct when the function is not called once per pass of one sized
    ``for`` loop over the batches of this file, or steps on another window.
    """
    function = back.function
    if function is None:
        raise CannotAct(
            back.call, "the backward call is not inside a loop, so there is no micro-step to count"
        )
    name = function.name.value
    unit = script.amp_switch if back.twin is not None else back.stmt
    assert unit is not None
    holder = script.block_of(unit)
    flag = _step_flag(script, function, holder, back)
    body = list(function.body.body)
    b = next(i for i, s in enumerate(body) if s is unit or script.inside(unit, s))
    below = list(back.block.body)
    if _already_windowed(script, below[below.index(back.stmt) + 1 :], n, name):
        return None
    early = next(
        (
            small
            for stmt in body[:b]
            for line in simple_statements(stmt)
            for small in line.body
            if isinstance(small, cst.Return) and script.function_of(small) is function
        ),
        None,
    )
    if early is not None:  # a call that returns here counts no micro-step
        raise CannotAct(
            early,
            f"{name}() may return here, before its backward call, so its calls would not "
            "count the micro-steps of the loop and the last window of an epoch would never step",
        )
    owner = script.parents.get(id(script.block_of(function)))
    cls = owner if isinstance(owner, cst.ClassDef) else None
    if cls is not None and (function.decorators or not function.params.params):
        raise CannotAct(
            function,
            f"the backward call is in {name}(), a method without an instance of its own "
            "(decorated, or no `self`), so there is nowhere to count its micro-steps",
        )
    call = only_call(script, function, name, cls)
    loop = script.loop_of(call)
    stmt = script.statement_of(call)
    if (
        not isinstance(loop, cst.For)
        or stmt is None
        or script.block_of(stmt) is not loop.body
        or _maybe_skipped(script, call, stmt)
    ):
        raise CannotAct(
            call,
            f"{name}() is called here, not once per pass of a `for` loop over the batches, so "
            "there is no micro-step to count",
        )
    refuse_unless_micro_steps(script, loop, back)
    skip = script.exits_of(loop, cst.Continue)
    if skip is not None:
        raise CannotAct(
            skip,
            f"this `continue` skips {name}() on some passes of the loop that calls it, so the "
            "micro-steps would not add up to the loader's length and the last window of an "
            "epoch would never step",
        )
    for other in (o for o in script.boundary_statements(loop) if _updates(script, o, stmt)):
        # (the call itself aside: a method named step) a zero_grad in the caller's loop would
        # wipe each window's gradients micro-step by micro-step; a step there would update on
        # every one
        raise CannotAct(
            other,
            f"the loop that calls {name}() steps, clips or zeroes gradients itself here; "
            f"keep the whole update in {name}() so it can happen once per window",
        )
    endless = endless_count(script, loop)
    if endless is not None:  # for i_episode in count(1): left by a break only
        note_endless_stop(script, loop, n, notes)
    else:
        note_break_below(script, loop, n, notes)  # the caller's loop ends the window there
    if flag is not None:
        _refuse_changing_flag(script, function, call, loop, flag)
    _note_scheduler(script, function, n, notes)
    if cls is not None:
        count = _on_the_instance(script, function, call, loop)
    else:
        count = _passed_in(script, back, function, call, stmt, loop, endless)
    step, steps, done = count.step, count.steps, count.done
    grouped = f"({done})" if " " in done else done
    if steps is None:  # an endless loop: every window is whole
        window, guard = str(n), f"{grouped} % {n} == 0"
    else:  # the last window of a pass over the loader is what is left of it
        window = f"min({n}, {steps} - {step} // {n} * {n})"
        guard = f"{grouped} % {n} == 0 or {done} == {steps}"
    starts = f"if {step} % {n} == 0"

    def windowed(container: cst.CSTNode, stmts: list[cst.BaseStatement], at: int, one: Backward):
        """``stmts`` (``one``'s backward at ``at``) with zero_grad above it on a window's first
        micro-step, the loss divided, the count advanced, and the update on its last."""
        before, after = _boundary_indices(script, container, stmts, at)  # type: ignore[arg-type]
        first, last = after[0], after[-1]
        out: list[cst.BaseStatement] = []
        for i, s in enumerate(stmts):
            if i in before:
                out.append(edits.wrap(starts, [s]))
            elif i == at:
                out += [_divide(one, s, window), *count.increment]
            elif i == first:
                out.append(edits.wrap(f"if {guard}", stmts[first : last + 1]))
            elif not first < i <= last:
                out.append(s)
        return out

    held = list(holder.body)
    u = held.index(unit)  # type: ignore[arg-type]
    if back.twin is None:
        new_held = windowed(function if holder is function.body else holder, held, u, back)
    else:  # one AMP switch: each branch steps its own way, both count the micro-step
        switch = script.amp_switch
        assert switch is not None and isinstance(switch.orelse, cst.Else)
        branches = []
        for block in (switch.body, switch.orelse.body):
            one = back if back.block is block else back.twin
            stmts = list(block.body)
            branches.append(windowed(block, stmts, stmts.index(one.stmt), one))
        new_switch = switch.with_changes(
            body=switch.body.with_changes(body=branches[0]),
            orelse=switch.orelse.with_changes(
                body=switch.orelse.body.with_changes(body=branches[1])
            ),
        )
        new_held = [
            edits.wrap(starts, [s]) if i < u and _zeroes(script, s) else s
            for i, s in enumerate(held)
        ]
        new_held[u] = new_switch
    _refuse_updates_outside(script, function, held[:u] if back.twin else held, unit)
    if holder is function.body:
        new_body = new_held
    else:
        guard_if = body[b]
        assert isinstance(guard_if, cst.If)
        new_body = list(body)
        new_body[b] = guard_if.with_changes(body=guard_if.body.with_changes(body=new_held))
    new_function = count.signature(
        function.with_changes(body=function.body.with_changes(body=new_body))
    )
    return edits.apply(
        script.module, {id(function): lambda _: [new_function], id(loop): count.loop_edit}
    )


def _step_flag(
    script: Script, function: cst.FunctionDef, holder: cst.CSTNode, back: Backward
) -> str | None:
    """The parameter ``flag`` of ``if flag:`` when the backward call (or its AMP switch) sits
    in that ``if``, directly in the function's body and without ``else`` (``_run_batch(...,
    train)`` that also serves evaluation); None when it sits in the body itself. Raises
    CannotAct for any other nesting."""
    if holder is function.body:
        return None
    guard = script.parents.get(id(holder))
    params = {p.name.value for p in function.params.params}
    if (
        isinstance(guard, cst.If)
        and guard.orelse is None
        and script.parents.get(id(guard)) is function.body
        and isinstance(guard.test, cst.Name)
        and guard.test.value in params
    ):
        return guard.test.value
    raise CannotAct(
        back.call,
        f"the backward call is nested in a block inside {function.name.value}(); accumulation "
        "needs it in the function's own body, or under one `if <parameter>:` there",
    )


def _refuse_changing_flag(
    script: Script, function: cst.FunctionDef, call: cst.Call, loop: cst.For, flag: str
) -> None:
    """Raise CannotAct unless the caller's loop hands ``flag`` the same value on every pass (a
    literal, the parameter's default, or a name the loop does not bind): a micro-step that
    skips the step would leave the count short of the loader's length."""
    params = list(function.params.params)
    position = next(i for i, p in enumerate(params) if p.name.value == flag)
    method = isinstance(script.parents.get(id(script.block_of(function))), cst.ClassDef)
    arg = argument_for(call, flag, position - 1 if method else position)
    if arg is None and params[position].default is not None and not any(a.star for a in call.args):
        return
    bound = {n for s in simple_statements(loop) for n in statement_targets(s)}
    bound |= set(target_names(loop.target))
    if arg is not None and (
        isinstance(arg, (cst.Integer, cst.SimpleString))
        or (isinstance(arg, cst.Name) and arg.value not in bound)
    ):
        return
    raise CannotAct(
        call,
        f"{function.name.value}() steps only when `{flag}` is true, and this call may hand it "
        "another value on each pass, so the micro-steps would not add up to the loader's length",
    )


def _zeroes(script: Script, stmt: cst.BaseStatement) -> bool:
    """True when ``stmt`` (above an AMP switch) zeroes gradients and does nothing else that
    updates; False when it updates nothing; raises CannotAct when it steps or clips."""
    if not script.boundary_statements(stmt) and not (
        isinstance(stmt, cst.SimpleStatementLine) and script.boundary_statements(stmt.body[0])
    ):
        return False
    if zeroes_only(stmt):
        return True
    raise CannotAct(
        stmt,
        "this statement above the backward call steps, clips or does more than zero the "
        "gradients; only zero_grad can be moved into the window's first micro-step",
    )


def _refuse_updates_outside(
    script: Script, function: cst.FunctionDef, handled: list[cst.BaseStatement], unit: cst.CSTNode
) -> None:
    """Raise CannotAct for a statement of the function that steps, clips or zeroes gradients
    outside ``unit`` (the backward statement's block, or the AMP switch) and the statements
    above it that the window already handles: it would still run on every micro-step."""
    for stmt in script.boundary_statements(function):
        if script.inside(stmt, unit) or any(stmt is h or script.inside(stmt, h) for h in handled):
            continue
        raise CannotAct(
            stmt,
            f"this steps, clips or zeroes gradients outside the block that holds the backward "
            f"call (line {script.line(unit)}), so it would still run on every micro-step; keep "
            "the whole update next to the backward call",
        )


@dataclass(frozen=True)
class _Count:
    """How the step function knows its micro-step, and what the caller's loop does for it."""

    step: str
    """The micro-step about to run, from 0 (``self._micro_step``, ``micro_step``)."""
    steps: str | None
    """The number of micro-steps in one pass over the loader; None for a loop that never runs
    out (:mod:`endless`)."""
    done: str
    """Micro-steps done once this one is, read below the backward call."""
    increment: list[cst.BaseStatement]
    """Statements after the backward call that advance the count (none when it is passed)."""
    loop_edit: edits.Replace
    signature: Callable[[cst.FunctionDef], cst.FunctionDef]


def _on_the_instance(
    script: Script, function: cst.FunctionDef, call: cst.Call, loop: cst.For
) -> _Count:
    """A method counts on its instance; the caller resets the count above its loop (so each
    pass over the loader, each epoch, starts a window) and sets the loader's length."""
    assert isinstance(call.func, cst.Attribute)
    receiver = dotted(call.func.value)
    iterable = loop.iter
    if isinstance(iterable, cst.Call) and dotted(iterable.func) == "enumerate":
        iterable = iterable.args[0].value
    length = _length(script, iterable)
    own = function.params.params[0].name.value
    counter = "_micro_step" if "._micro_step" not in script.module.code else "_fg_micro_step"
    total = counter + "s"
    setup = edits.statements(f"{receiver}.{counter} = 0\n{receiver}.{total} = {length}\n")
    step = f"{own}.{counter}"
    return _Count(
        step,
        f"{own}.{total}",
        step,
        [edits.statement(f"{step} += 1\n")],
        edits.before(setup),
        lambda f: f,
    )


def _passed_in(
    script: Script,
    back: Backward,
    function: cst.FunctionDef,
    call: cst.Call,
    stmt: cst.SimpleStatementLine,
    loop: cst.For,
    endless: tuple[str, str] | None,
) -> _Count:
    """A plain function gets the index and the loader's length as keyword-only arguments
    from the caller's loop (enumerated when it is not already); from a loop over
    ``itertools.count(...)`` (``endless``: its count from 0), the index alone."""
    step = script.fresh(("micro_step",), function)
    if endless is not None:
        index, length, target, iterable = endless[0], None, loop.target, loop.iter
    else:
        caller = dataclasses.replace(back, function=script.function_of(loop))
        index, _, target, iterable, length = _counter(script, loop, caller)
    added = [(step, index)]
    if length is not None:
        steps = script.fresh(("micro_steps",), function)
        added.append((steps, length))
    new_call = call.with_changes(
        args=[
            *_with_trailing_comma(call.args),
            *(
                cst.Arg(
                    cst.parse_expression(_unparenthesized(value)),
                    keyword=cst.Name(keyword),
                    equal=_EQUAL,
                )
                for keyword, value in added
            ),
        ]
    )
    swap = _Swap(stmt, edits.replace_call(call, new_call))

    def loop_edit(s: cst.BaseStatement) -> list[cst.BaseStatement]:
        return [s.with_changes(target=target, iter=iterable).visit(swap)]  # type: ignore[list-item]

    signature = _keyword_only(*(keyword for keyword, _ in added))
    return _Count(step, length and added[1][0], f"{step} + 1", [], loop_edit, signature)


_EQUAL = cst.AssignEqual(
    whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
)


def only_call(
    script: Script, function: cst.FunctionDef, name: str, cls: cst.ClassDef | None
) -> cst.Call:
    """The one call of ``function`` in the file: ``name(...)`` for a function; for a method of
    ``cls``, ``self.name(...)`` in another method of ``cls`` or ``x.name(...)`` on an instance
    ``x = cls(...)``. Raises CannotAct when there is none or several."""
    instances = (
        {t for t, c in script.names.constructed if dotted(c.func) == cls.name.value}
        if cls is not None
        else set()
    )

    def calls_it(c: cst.Call) -> bool:
        if cls is None:
            return isinstance(c.func, cst.Name) and c.func.value == name
        if not (isinstance(c.func, cst.Attribute) and c.func.attr.value == name):
            return False
        receiver = dotted(c.func.value)
        caller = script.function_of(c)
        own = (
            caller is not None
            and script.parents.get(id(script.block_of(caller))) is cls
            and bool(caller.params.params)
            and receiver == caller.params.params[0].name.value
        )
        return own or receiver in instances

    calls = [c for c in script.calls if calls_it(c) and not script.inside(c, function)]
    if not calls:
        handed = next(
            (
                c
                for c in script.calls
                if any(isinstance(a.value, cst.Name) and a.value.value == name for a in c.args)
            ),
            None,
        )
        if handed is not None:  # LBFGS's optimizer.step(closure), mp.spawn(train, ...)
            raise CannotAct(
                handed,
                f"the backward call is in {name}(), which is handed to "
                f"{script.code(handed.func)}(...) here rather than called once per batch, so "
                "there is no micro-step to count",
            )
        raise CannotAct(
            function,
            f"the backward call is in {name}(), which no loop of this file calls, so there is "
            "no micro-step to count",
        )
    if len(calls) > 1:
        lines = script.lines(calls)
        raise CannotAct(
            calls[1],
            f"{name}() is called in more than one place (lines {lines}); accumulation counts "
            "the micro-steps of one loop",
        )
    return calls[0]


def _updates(script: Script, stmt: cst.SimpleStatementLine, call_stmt: cst.CSTNode) -> bool:
    """True when ``stmt`` (a boundary statement of the caller's loop, not the call of the step
    function itself) zeroes or clips gradients or steps an optimizer, scaler or scheduler
    (which would go on stepping per micro-batch): ``env.step(action)`` does not."""
    if stmt is call_stmt:
        return False
    for call in script.calls:
        name = dotted(call.func) or ""
        receiver, _, method = name.rpartition(".")
        if not script.inside(call, stmt) or method not in _UPDATES:
            continue
        if method != "step" or any(w in receiver.lower() for w in ("opt", "scaler", "sched")):
            return True
    return False


_UPDATES = ("step", "zero_grad", "clip_grad_norm_", "clip_grad_value_", "unscale_")


_SKIPPING = (
    cst.ListComp,
    cst.SetComp,
    cst.DictComp,
    cst.GeneratorExp,
    cst.Lambda,
    cst.IfExp,
    cst.BooleanOperation,
)
"""Expressions that may run a call they hold never, or more than once."""


def _maybe_skipped(script: Script, call: cst.Call, stmt: cst.CSTNode) -> bool:
    """True when ``call`` may not run exactly once each time ``stmt`` runs."""
    for node in script.ancestors(call):
        if node is stmt:
            return False
        if isinstance(node, _SKIPPING):
            return True
    return True


def _already_windowed(script: Script, below: list[cst.BaseStatement], n: int, name: str) -> bool:
    """True when the statements below the backward call already step under an ``if ... % n``;
    raises CannotAct when that window is not ``n``."""
    for stmt in below:
        if isinstance(stmt, cst.If) and has_modulo(stmt.test) and script.boundary_statements(stmt):
            window = next(iter(modulo_operands(stmt.test)), None)
            if isinstance(window, cst.Integer) and int(window.value, 0) == n:
                return True
            setting = script.code(window) if window is not None else "its window"
            raise CannotAct(
                stmt,
                f"{name}() already steps the optimizer every {setting} micro-steps; set "
                f"{setting} to {n} instead of adding a second accumulation",
            )
    return False


def _keyword_only(*names: str) -> Callable[[cst.FunctionDef], cst.FunctionDef]:
    """An edit adding keyword-only parameters ``names`` to a function."""

    def edit(function: cst.FunctionDef) -> cst.FunctionDef:
        params = function.params
        new = [cst.Param(cst.Name(name)) for name in names]
        star = params.star_arg
        if isinstance(star, cst.MaybeSentinel) or star is None:
            star = cst.ParamStar()
        return function.with_changes(
            params=params.with_changes(star_arg=star, kwonly_params=[*params.kwonly_params, *new])
        )

    return edit


def _unparenthesized(code: str) -> str:
    """``i - 1`` for ``(i - 1)``: a keyword argument needs no parentheses."""
    return code[1:-1] if code.startswith("(") and code.endswith(")") else code


def _with_trailing_comma(args: tuple[cst.Arg, ...] | list[cst.Arg]) -> list[cst.Arg]:
    if not args:
        return []
    *rest, last = args
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    return [*rest, last.with_changes(comma=comma)]


class _Swap(cst.CSTTransformer):
    """Replaces one statement (by identity) with what an edit makes of it."""

    def __init__(self, stmt: cst.CSTNode, edit: edits.Replace) -> None:
        super().__init__()
        self.stmt = stmt
        self.edit = edit

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):  # type: ignore[no-untyped-def]
        if original_node is self.stmt:  # the edit finds the call by identity: the original
            (new,) = self.edit(original_node)  # type: ignore[arg-type]
            return new
        return updated_node
