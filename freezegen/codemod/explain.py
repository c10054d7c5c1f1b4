"""What the codemod sees in a script: the map ``freezegen codemod --explain`` prints.

A refusal names one obstacle; to understand it a user needs the rest of the picture: which
backward call, which loop counts the micro-steps, where the forward pass starts, which optimizer
trains which model, and what the script already does itself (a scaler, an autocast, its own
accumulation, Accelerate). Every entry here is asked of :class:`Script` and the modules the
transforms use, so the map shows exactly what the transforms act on, never a second reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from freezegen.check.names import SCALERS, dotted
from freezegen.codemod.existing import accelerator_calls, own_accumulation, own_autocast
from freezegen.codemod.hand_step import sole_hand_step
from freezegen.codemod.lines import LineMap
from freezegen.codemod.precision import forward_region, loss_statements, refuse_without_forward
from freezegen.codemod.saved_forward import saved_forwards
from freezegen.codemod.script import Backward, CannotAct, Script
from freezegen.codemod.step_function import only_call
from freezegen.codemod.versions import Pins


@dataclass(frozen=True)
class Seen:
    """One entry of the map: what (``loop``), where (line 0: nowhere) and what it says."""

    what: str
    line: int
    text: str


def explain_module(
    module: cst.Module, pins: Pins | None = None, lines: LineMap | None = None
) -> list[Seen]:
    """The map of ``module`` (whose project pins ``pins``, whose lines were the file's as
    ``lines`` says), in a fixed order of entries; never raises CannotAct (an entry that cannot
    be told says why, at the line it is about)."""
    script = Script(module, pins, lines)
    seen: list[Seen] = []
    try:
        back = script.backward
    except CannotAct as exc:
        return [_missing(script, "backward", exc)]
    # one training loop per backward call: each one's step, in source order
    sites = [script] + [Script(module, pins, lines, f) for f in range(1, script.backward_count)]
    for site in sites:
        seen += _step(site, site.backward)
    seen.append(_optimizer(script))
    seen.extend(
        Seen(
            "reference pass",
            script.line(b.call),
            f"{_code(script, b.call)}: runs once before the optimizer is built, not a training "
            "step (left as it is)",
        )
        for b in script.reference_passes
    )
    seen.extend(_schedulers(script, back.loop))
    seen.extend(_scalers(script))
    for site in sites:
        seen += _own_mechanisms(site, site.backward)
    for call in accelerator_calls(script):
        seen.append(Seen("accelerator", script.line(call), _code(script, call)))
    return seen


def _forward(script: Script, back: Backward) -> Seen:
    try:
        region = forward_region(script, back)
        refuse_without_forward(script, region, back)
    except CannotAct as exc:
        saved = saved_forwards(script, back, script.trained_model)
        if not saved:
            return _missing(script, "forward", exc)
        lines = ", ".join(str(script.line(s)) for s in saved)
        return Seen(
            "forward",
            script.line(saved[0]),
            f"line(s) {lines} call the model, whose outputs the loss `{_code(script, back.loss)}` "
            "reads through the model's saved lists (what autocast would cover)",
        )
    first, last = script.line(region[0]), script.line(region[-1])
    lines = f"line {first} computes" if first == last else f"lines {first}-{last} compute"
    loss = _code(script, back.loss)
    return Seen("forward", first, f"{lines} `{loss}` (what autocast would cover)")


def _optimizer(script: Script) -> Seen:
    try:
        site = script.optimizer
    except CannotAct as exc:
        hand = sole_hand_step(script)
        if hand is None:
            return _missing(script, "optimizer", exc)
        return Seen(
            "optimizer",
            script.line(hand.loop),
            f"none: `{_code(script, hand.loop.iter)}` updated by hand (the step), trains "
            f"`{hand.model}`",
        )
    trains = f"trains `{site.model}`" if site.model else "its model cannot be told"
    if site.handed is not None:  # built out of view: where it comes in, and the model it steps
        return Seen(
            "optimizer",
            script.line(site.stmt),
            f"`{site.target}` handed to {site.handed} by its caller, {trains}",
        )
    callee = dotted(site.call.func) or _code(script, site.call.func)
    if site.each is not None:
        trains = f"one per model of `{site.each}`, each trains its own"
    return Seen("optimizer", script.line(site.call), f"`{site.target}` = {callee}(...), {trains}")


def _schedulers(script: Script, loop: cst.CSTNode | None) -> list[Seen]:
    out = []
    for call in script.scheduler_steps():
        where = "in the loop" if loop is not None and script.inside(call, loop) else "outside"
        out.append(Seen("scheduler", script.line(call), f"{_code(script, call)} ({where})"))
    return out


def _scalers(script: Script) -> list[Seen]:
    scalers = script.names.targets_of(*SCALERS)
    return [
        Seen("scaler", script.line(call), f"`{target}` = {dotted(call.func) or 'GradScaler'}(...)")
        for target, call in script.names.constructed
        if target in scalers
    ]


def _step(script: Script, back: Backward) -> list[Seen]:
    """The backward call, its loop and the forward pass that autocast would cover."""
    where = f"in {back.function.name.value}()" if back.function else "at module level"
    seen = [Seen("backward", script.line(back.call), f"{_code(script, back.call)} ({where})")]
    if back.loop is None:
        seen.append(_calling_loop(script, back))
    else:
        seen.append(Seen("loop", script.line(back.loop), _header(script, back.loop)))
    return [*seen, _forward(script, back)]


def _calling_loop(script: Script, back: Backward) -> Seen:
    """The loop that calls the function holding ``back`` (a step function, a Trainer's
    method), as the accumulation finds it; none, with why, when there is no such one."""
    function = back.function
    if function is None:
        return Seen("loop", 0, "none: the backward call is not inside a loop")
    name = function.name.value
    owner = script.parents.get(id(script.block_of(function)))
    try:
        call = only_call(script, function, name, owner if isinstance(owner, cst.ClassDef) else None)
    except CannotAct as why:
        return Seen("loop", 0, f"none: the backward call is in {name}(): {why.message}")
    loop = script.loop_of(call)
    if loop is None:
        return Seen("loop", 0, f"none: {name}() is called at line {script.line(call)}, in no loop")
    return Seen("loop", script.line(loop), f"{_header(script, loop)} (calls {name}())")


def _own_mechanisms(script: Script, back: Backward) -> list[Seen]:
    """The script's own accumulation and autocast around the loss of ``back``."""
    own = own_accumulation(script, back)
    autocast = own_autocast(script, loss_statements(script, back))
    return [
        Seen("accumulation", script.line(own.node), own.how)
        if own is not None
        else Seen("accumulation", 0, "none of the script's own"),
        Seen("autocast", script.line(autocast[0]), _code(script, autocast[1].item))
        if autocast is not None
        else Seen("autocast", 0, "none around the loss"),
    ]


def _missing(script: Script, what: str, exc: CannotAct) -> Seen:
    line = script.line(exc.node) if exc.node is not None else 0
    return Seen(what, line, f"not found: {exc.message}")


def _header(script: Script, loop: cst.For | cst.While) -> str:
    if isinstance(loop, cst.For):
        return f"for {_code(script, loop.target)} in {_code(script, loop.iter)}"
    return f"while {_code(script, loop.test)}"


def _code(script: Script, node: cst.CSTNode) -> str:
    text = " ".join(script.code(node).split())
    return text if len(text) <= 80 else text[:77] + "..."
