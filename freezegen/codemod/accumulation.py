"""Gradient accumulation over N micro-batches: the loss divided by its window's true size, and
the optimizer step, its clipping, zero_grad and the scheduler run once per window (and, in a
``for`` loop over a sized iterable, after each epoch's last, partial one; a ``while`` loop has
no length, so its passes are counted by a counter of its own: :mod:`pass_counter`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.rules._calls import add_keyword, keyword
from freezegen.codemod import edits, fabric_edits
from freezegen.codemod.endless import counted_from, endless_count, note_endless_stop
from freezegen.codemod.existing import (
    OwnAccumulation,
    accelerator_calls,
    accelerator_statement,
    int_value,
    own_accumulation,
    refuse_hidden_keyword,
)
from freezegen.codemod.hand_step import HAND_STEP, sole_hand_step
from freezegen.codemod.knobs import (
    Unreachable,
    compose,
    set_knob,
    yours_to_set,
)
from freezegen.codemod.micro_steps import (
    note_break_below,
    refuse_exits_above,
    refuse_unless_micro_steps,
)
from freezegen.codemod.optimizer_origin import model_at_step
from freezegen.codemod.options import CodemodOptions
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    YoursToSet,
    expression_call,
    foreign_backward,
    steps_optimizer,
    zeroes_only,
)
from freezegen.codemod.transform import Notes


def accumulation(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Accumulate gradients over ``options.grad_accum_steps`` micro-batches.

    A script that accumulates by hand is kept as it is when its own window is already N, and
    refused otherwise (a second mechanism on top of the first would step once per N*N
    batches); Accelerate's own accumulation is composed with, branch by branch. A ``while``
    loop whose every pass draws a new batch is counted by a counter the codemod adds (Fabric's
    sync flag reads it too); under Accelerate, accumulate() counts its own calls.
    """
    n = options.grad_accum_steps
    if n <= 1:
        return None
    back = script.backward
    own = own_accumulation(script, back)
    if own is not None and own.by_hand:
        if int_value(script, own.window) == n:
            return None
        return _set_own_window(script, own, n, notes)
    if back.style == "accelerate":
        return _accelerate(script, back, n, own, notes)
    if back.style == "fabric" and fabric_edits.own_sync(script, back, n):
        return None
    if own is not None:  # accelerate's accumulation around a backward it does not own
        raise CannotAct(own.node, _refusal(script, own, n))
    loop = back.loop
    if loop is None:  # a step function or method that a loop elsewhere calls
        from freezegen.codemod.step_function import accumulate_called_step

        return accumulate_called_step(script, back, n, notes)
    if back.block is not loop.body:
        raise CannotAct(
            back.call,
            "the backward call is nested in a block inside its loop; move it to the loop body",
        )
    _note_scheduler(script, loop, n, notes)
    body = list(loop.body.body)
    b = next(i for i, s in enumerate(body) if s is back.stmt)
    before, after = _boundary_indices(script, loop, body, b)
    refuse_unless_micro_steps(script, loop, back)
    refuse_exits_above(script, loop, body, after)
    if isinstance(loop, cst.For) and (endless := endless_count(script, loop)) is not None:
        note_endless_stop(script, loop, n, notes)  # for i in count(1): left by a break only
        window = _endless_window(loop, *endless, n)
    elif isinstance(loop, cst.For):
        note_break_below(script, loop, n, notes)
        window = _epoch_window(script, loop, back, n)
    else:  # a loop with no length: a counter of its own passes
        from freezegen.codemod.pass_counter import pass_window

        window = pass_window(script, loop, body, bool(before), after[-1], n, notes)
    guard = window.last
    sync = fabric_edits.sync_window(script, back) if back.style == "fabric" else None
    if sync is not None:  # Fabric's idiom: one flag for the sync and the step
        guard = f"not {sync.flag}"
    new_body: list[cst.BaseStatement] = []
    first, last = after[0], after[-1]
    for i, stmt in enumerate(body):
        if i in before:
            new_body.append(edits.wrap(f"if {window.first}", [stmt]))
        elif i == b:
            new_body.append(_divide(back, stmt, window.size))
        elif i == first:
            new_body.append(edits.wrap(f"if {guard}", body[first : last + 1]))
        elif not first < i <= last:
            new_body.append(stmt)
    if sync is not None:  # each statement up to the backward call kept its index
        start = max(before, default=-1) + 1
        new_body[start : b + 1] = sync.wrap(window.accumulating, new_body[start : b + 1])
    return edits.apply(script.module, {id(loop): lambda _: window.rebuild(new_body)})


@dataclass(frozen=True)
class Window:
    """How a loop counts its micro-steps into windows of N: the tests and the divisor that
    its guarded body reads, and the loop rebuilt around that body."""

    first: str
    """True on a window's first micro-step: zero_grad runs."""
    last: str
    """True on a window's last micro-step: the optimizer steps."""
    accumulating: str
    """``not last``, spelled out: Fabric skips the gradient sync while it holds."""
    size: str
    """What the loss is divided by: the window's true size."""
    rebuild: Callable[[list[cst.BaseStatement]], list[cst.BaseStatement]]
    """The statements that replace the loop, given its new body."""


def _epoch_window(script: Script, loop: cst.For, back: Backward, n: int) -> Window:
    """The window of a ``for`` loop over a sized iterable: counted by its (added) enumerate
    index, the last window of each epoch cut to what is left of the loader, and stepped."""
    counter, done, target, iterable, length = _counter(script, loop, back)
    grouped = f"({done})" if " " in done else done
    return Window(
        first=f"{counter} % {n} == 0",
        last=f"{grouped} % {n} == 0 or {done} == {length}",
        accumulating=f"{grouped} % {n} != 0 and {done} != {length}",
        size=f"min({n}, {length} - {counter} // {n} * {n})",
        rebuild=lambda body: [
            loop.with_changes(target=target, iter=iterable, body=loop.body.with_changes(body=body))
        ],
    )


def _endless_window(loop: cst.For, counter: str, done: str, n: int) -> Window:
    """The window of a loop over ``itertools.count(...)``, counted by its own target: every
    window holds N micro-steps (the loop has no last one; :mod:`endless`)."""
    grouped = f"({done})" if " " in done else done
    return Window(
        first=f"{counter} % {n} == 0",
        last=f"{grouped} % {n} == 0",
        accumulating=f"{grouped} % {n} != 0",
        size=str(n),
        rebuild=lambda body: [loop.with_changes(body=loop.body.with_changes(body=body))],
    )


def _set_own_window(
    script: Script, own: OwnAccumulation, n: int, notes: Notes
) -> cst.Module | None:
    """Compose with accumulation by hand: set the one knob that both the loss's divisor and
    the step's window (a guard's modulo, a micro-step loop's range) read to N. Kept as it is,
    the user told what to set (:class:`YoursToSet`), when the script is not of that plain form
    or its knob takes its value outside the file (see knobs.set_knob); refused under DeepSpeed,
    whose engine steps on an accumulation of its own, or when no value can be set."""
    refusal = CannotAct(own.node, _refusal(script, own, n))
    engine = next(
        (k for c in accelerator_calls(script) if (k := keyword(c, "deepspeed_plugin")) is not None),
        None,
    )
    if engine is not None:  # DeepSpeed's engine steps inside every backward: no window by hand
        raise CannotAct(
            own.node,
            f"{refusal.message}; the codemod cannot set it for you: DeepSpeed (deepspeed_plugin "
            f"at line {script.line(engine)}) steps on its own accumulation, not on this guard",
        )
    if own.window is None or own.divisor is None or own.node is own.divisor:
        why = (
            "it composes only with the plain form (the loss divided by the window, the "
            "optimizer stepped every window)"
        )
        try:  # a knob that could not be set anyway is the more useful reason
            for read in (own.window, own.divisor):
                if read is not None:
                    set_knob(script, read, str(n))
        except Unreachable as exc:
            why = exc.message
        except CannotAct as exc:
            why = exc.message
        if own.node is not own.divisor:  # its optimizer steps once per window: keep it
            raise yours_to_set(refusal, _setting(script, own), str(n), why)
        # a divided loss alone may be no accumulation at all (the optimizer steps every batch)
        raise CannotAct(own.node, f"{refusal.message}; the codemod cannot set it for you: {why}")
    setting = script.code(own.window)
    swaps = compose(script, [own.window, own.divisor], str(n), setting, refusal, notes)
    if swaps:
        _note_first_window(script, own, n, notes)
    return edits.apply(script.module, {}, swaps) if swaps else None


def _note_first_window(script: Script, own: OwnAccumulation, n: int, notes: Notes) -> None:
    """Say when the script's own guard is ``step % k == 0`` over ``enumerate(loader)``: it
    steps after micro-batch 0, so each epoch's first window holds one micro-batch. That is the
    script's behaviour for any k, kept as it is; the user should know it is not N."""
    guard = own.node
    if not isinstance(guard, cst.If):
        return
    loop = script.loop_of(guard)
    if not (
        isinstance(loop, cst.For)
        and isinstance(loop.iter, cst.Call)
        and dotted(loop.iter.func) == "enumerate"
        and len(loop.iter.args) == 1
        and isinstance(loop.target, cst.Tuple)
        and isinstance(loop.target.elements[0].value, cst.Name)
    ):
        return
    counter = loop.target.elements[0].value.value
    test = script.code(guard.test).replace(" ", "")
    if f"{counter}%{script.code(own.window).replace(' ', '')}==0" not in test:
        return
    notes.append(
        (
            guard,
            f"the script's own guard (line {script.line(guard)}) steps when {counter} % "
            f"{script.code(own.window)} == 0 with {counter} counted from 0: each epoch's first "
            f"window holds one micro-batch, not {n} (the script's own behaviour, kept)",
        )
    )


def _setting(script: Script, own: OwnAccumulation) -> str:
    """What the user sets to change the script's own window, as the script spells it."""
    return script.code(own.window) if own.window is not None else "its window"


def _refusal(script: Script, own: OwnAccumulation, n: int) -> str:
    setting = _setting(script, own)
    return (
        f"the script already accumulates gradients {own.how}; set {setting} to {n} instead "
        "of adding a second accumulation"
    )


def _boundary_indices(
    script: Script, loop: cst.For, body: list[cst.BaseStatement], b: int
) -> tuple[set[int], list[int]]:
    """Indices in ``body`` of zero_grad statements above the backward call, and the run of
    statements below it that clip, step, update or zero. In a script that builds no optimizer,
    the loop that updates the model's parameters by hand is its step (:mod:`hand_step`)."""
    tops: dict[int, list[str]] = {}
    index = {id(s): i for i, s in enumerate(body)}
    hand = sole_hand_step(script)
    by_hand = [u for u in hand.updates if script.inside(u, loop)] if hand is not None else []
    for stmt in [*script.boundary_statements(loop), *by_hand]:
        top = next(
            i for a in (stmt, *script.ancestors(stmt)) if (i := index.get(id(a))) is not None
        )
        call = expression_call(stmt)
        name = dotted(call.func) or "" if call else ""
        tops.setdefault(top, []).append(HAND_STEP if any(stmt is u for u in by_hand) else name)
    before = {i for i in tops if i < b}
    for i in before:
        if not all(name.endswith(".zero_grad") for name in tops[i]) or not zeroes_only(body[i]):
            raise CannotAct(
                body[i],
                "this statement above the backward call steps, clips or does more than zero "
                "the gradients; only zero_grad can be moved into the window's first micro-step",
            )
    after = sorted(i for i in tops if i > b)
    steps = [i for i in after if any(n == HAND_STEP or steps_optimizer(n) for n in tops[i])]
    if not steps:
        raise CannotAct(loop, "no optimizer.step() below the backward call in the loop body")
    return before, list(range(after[0], after[-1] + 1))


def _counter(
    script: Script, loop: cst.For, back: Backward
) -> tuple[str, str, cst.BaseAssignTargetExpression, cst.BaseExpression, str]:
    """The micro-step counter (from 0), the count of micro-steps done once this one is, the
    loop's (new) target and iterable, and its length."""
    it, target = loop.iter, loop.target
    start = _enumerate_start(it)
    if (
        start is not None
        and isinstance(target, cst.Tuple)
        and len(target.elements) == 2
        and isinstance(target.elements[0].value, cst.Name)
    ):
        assert isinstance(it, cst.Call)
        # the window arithmetic counts from 0: enumerate(loader, 1) counts from 1
        counter, done = counted_from(target.elements[0].value.value, start)
        return counter, done, target, it, _length(script, it.args[0].value)
    if (
        isinstance(it, cst.Call)
        and dotted(it.func) == "range"
        and len(it.args) == 1
        and isinstance(target, cst.Name)
    ):
        return target.value, f"{target.value} + 1", target, it, _length(script, it)
    counter = script.fresh(("step", "micro_step", "batch_index"), back.function)
    length = _length(script, it)
    inner = target
    if isinstance(target, cst.Tuple) and not target.lpar:
        inner = target.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    new_target = cst.Tuple(
        [
            cst.Element(
                cst.Name(counter), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            ),
            cst.Element(inner),
        ],
        lpar=[],
        rpar=[],
    )
    new_iter = cst.Call(cst.Name("enumerate"), [cst.Arg(it)])
    return counter, f"{counter} + 1", new_target, new_iter, length


def _enumerate_start(it: cst.BaseExpression) -> int | None:
    """The first count of ``enumerate(x)`` or ``enumerate(x, k)`` / ``start=k`` with a literal
    ``k``; None for any other iterable (or a start only known at run time)."""
    if not (isinstance(it, cst.Call) and dotted(it.func) == "enumerate" and it.args):
        return None
    if len(it.args) == 1:
        return 0
    if len(it.args) != 2:
        return None
    start = it.args[1]
    keyword = start.keyword.value if start.keyword is not None else "start"
    if keyword != "start" or not isinstance(start.value, cst.Integer):
        return None
    return int(start.value.value, 0)


_PROGRESS_BARS = ("tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "tqdm.rich.tqdm")
"""Wrappers that yield exactly the items of their first argument (``total=`` only labels)."""
_PURE_CALLS = ("len", "size")
"""Calls a length expression may repeat: they only read a size."""


def _length(script: Script, it: cst.BaseExpression) -> str:
    """An expression for how many items ``it`` yields, evaluated again at each window's end:
    ``len(loader)``, a range's length, through ``tqdm(...)`` and ``enumerate(...)``."""
    if isinstance(it, (cst.Name, cst.Attribute)):
        return f"len({script.code(it)})"
    if isinstance(it, cst.Call) and dotted(it.func) == "range" and _pure(script, it):
        if len(it.args) == 1:
            return script.code(edits.paren(it.args[0].value))
        return f"len({script.code(it)})"
    if isinstance(it, cst.Call) and it.args and it.args[0].keyword is None:
        callee = script.names.qualified(it.func) or ""
        if callee in _PROGRESS_BARS or (dotted(it.func) == "enumerate" and not it.args[0].star):
            return _length(script, it.args[0].value)
    raise CannotAct(
        it,
        f"cannot tell how many batches `{script.code(it)}` yields, so the last partial window "
        "would be lost: loop over a sized loader",
    )


def _pure(script: Script, call: cst.Call) -> bool:
    """True when repeating ``call``'s arguments has no effect: only names, literals,
    arithmetic and size reads."""
    for node in script.calls_in(call):
        func = node.func
        name = func.attr.value if isinstance(func, cst.Attribute) else dotted(func)
        if name not in _PURE_CALLS:
            return False
    return True


def _divide(back: Backward, stmt: cst.BaseStatement, window: str) -> cst.BaseStatement:
    """The backward statement with its loss divided by ``window``."""
    divided = cst.BinaryOperation(
        left=edits.paren(back.loss),
        operator=cst.Divide(),
        right=cst.parse_expression(window),
    )
    call = back.call
    assert isinstance(call.func, cst.Attribute)
    if back.style == "fabric":  # fabric.backward(loss / window)
        arg = call.args[0].with_changes(value=divided)
        new = call.with_changes(args=[arg, *call.args[1:]])
    elif back.style == "scaler":
        scale = call.func.value
        assert isinstance(scale, cst.Call)
        arg = scale.args[0].with_changes(value=divided)
        new = call.with_changes(
            func=call.func.with_changes(value=scale.with_changes(args=[arg, *scale.args[1:]]))
        )
    else:
        divided = divided.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        new = call.with_changes(func=call.func.with_changes(value=divided))
    return edits.replace_call(call, new)(stmt)[0]


def _accelerate(
    script: Script, back: Backward, n: int, own: OwnAccumulation | None, notes: Notes
) -> cst.Module | None:
    """Accelerate: gradient_accumulation_steps=N on every Accelerator(...) and the loop body
    under accelerator.accumulate; refused when the script already sets another window."""
    calls = accelerator_calls(script)
    if not calls:
        raise foreign_backward(script, back)
    changes: dict[int, cst.BaseExpression] = {}
    windows: list[cst.BaseExpression] = []
    for call in calls:
        current = keyword(call, "gradient_accumulation_steps")
        plugin = keyword(call, "gradient_accumulation_plugin")
        if current is None and plugin is None:
            refuse_hidden_keyword(script, call, "gradient_accumulation_steps")
            refuse_hidden_keyword(script, call, "gradient_accumulation_plugin")
            changes[id(call)] = add_keyword(call, "gradient_accumulation_steps", str(n))
        elif own is not None and plugin is not None:
            raise CannotAct(own.node, _refusal(script, own, n))
        elif own is not None and int_value(script, current.value) != n:
            windows.append(current.value)
    if own is not None:  # assigned to the accelerator later: it overrides any keyword
        windows += [v for v in own.assigned if int_value(script, v) != n]
    wrapped = own is not None and own.block is not None
    if not wrapped and len(changes) < len(calls):
        raise CannotAct(
            calls[0], "gradient_accumulation_steps is set but no accumulate() block is used"
        )
    added = bool(changes)
    if own is not None and windows:  # Accelerate's own window: set the knob it reads
        refusal = CannotAct(own.node, _refusal(script, own, n))
        setting = script.code(windows[0])
        try:
            changes.update(compose(script, windows, str(n), setting, refusal, notes))
        except YoursToSet as exc:
            # a window assigned to the accelerator overrides every constructor's keyword;
            # without one, a branch the knob does not reach would need our edit: all or none
            if changes and not own.assigned:
                raise exc.refusal from None
            if not wrapped:  # half a mechanism: nothing to keep
                raise CannotAct(
                    own.node,
                    f"{refusal.message}; it has no accumulate() block, and the codemod cannot "
                    "set its window to add one",
                ) from None
            raise
    statement_edits: dict[int, edits.Replace] = {}
    for call in calls:
        if id(call) in changes:
            accelerator_statement(script, call)
    if back.loop is not None and added:  # a window the script counts itself is no news
        _note_scheduler(script, back.loop, n, notes)
    if not wrapped:
        loop = back.loop
        if loop is None:
            raise CannotAct(back.call, "the backward call is not inside a loop")
        # accumulate() counts its own calls: no length needed, but each pass must be a new
        # micro-batch, and a pass that ends above the step would leave its window unstepped
        refuse_unless_micro_steps(script, loop, back)
        body = list(loop.body.body)
        index = {id(s): i for i, s in enumerate(body)}
        update = sorted(
            {
                next(i for a in (s, *script.ancestors(s)) if (i := index.get(id(a))) is not None)
                for s in script.boundary_statements(loop)
            }
        )
        if update:
            refuse_exits_above(script, loop, body, update)
        note_break_below(script, loop, n, notes)
        if isinstance(loop, cst.While):
            from freezegen.codemod.pass_counter import note_passes

            note_passes(script, loop, n, notes)
        model = model_at_step(script, script.optimizer, back.function)
        accelerator = (
            dotted(back.call.func.value) if isinstance(back.call.func, cst.Attribute) else None
        )
        header = f"with {accelerator}.accumulate({model})"
        statement_edits[id(loop)] = lambda s: [
            s.with_changes(body=s.body.with_changes(body=[edits.wrap(header, list(s.body.body))]))
        ]
    if not statement_edits and not changes:
        return None
    return edits.apply(script.module, statement_edits, changes)


def _note_scheduler(script: Script, loop: cst.CSTNode, n: int, notes: Notes) -> None:
    """Say that a learning-rate scheduler stepped in the loop now steps once per window: its
    length, when the script counts it in batches, must shrink by N or the schedule only gets
    1/N of the way (the codemod cannot see what the length means, so it tells the user)."""
    for call in script.scheduler_steps():
        if script.inside(call, loop):
            assert isinstance(call.func, cst.Attribute)
            notes.append(
                (
                    call,
                    f"{script.code(call.func.value)} now steps once per {n} micro-batches: if its "
                    "length counts batches (e.g. num_training_steps=len(loader) * epochs), "
                    f"divide it by {n}, or the schedule only gets 1/{n} of the way",
                )
            )
            return
