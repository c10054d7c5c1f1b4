"""Precision and accumulation the way Lightning Fabric users write them.

Fabric autocasts the forward of every model it set up when it is built with a mixed
``precision`` (and, for ``16-mixed``, scales the loss in ``fabric.backward`` and steps through
the optimizer it set up), so precision is one argument of ``Fabric(...)`` and never a
``torch.autocast`` on top. Accumulation keeps the window arithmetic of
:mod:`freezegen.codemod.accumulation` and adds Fabric's idiom around it: the forward and the
backward of a micro-step that does not end its window run under
``fabric.no_backward_sync(model, enabled=is_accumulating)``, so a distributed run reduces the
gradients once per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from freezegen.check.loops import modulo_operands
from freezegen.check.names import dotted
from freezegen.check.rules._calls import add_keyword, keyword
from freezegen.codemod import edits
from freezegen.codemod.existing import int_value, refuse_hidden_keyword, single_value
from freezegen.codemod.fabric import fabric_calls, is_fabric, receiver
from freezegen.codemod.knobs import compose
from freezegen.codemod.optimizer_origin import model_at_step
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    YoursToSet,
    raise_kept,
    simple_statements,
)
from freezegen.codemod.transform import Notes
from freezegen.codemod.versions import too_old

PRECISIONS = {"bf16": "bf16-mixed", "fp16": "16-mixed"}
"""Fabric's precision for each ``--precision``."""
_SAME = {"bf16-mixed": ("bf16-mixed", "bf16"), "16-mixed": ("16-mixed", "16")}
"""Values of ``precision=`` that already mean it (Fabric keeps the old short forms as aliases)."""
_SETUP = ("setup", "setup_module")


def precision(script: Script, back: Backward, wanted: str, notes: Notes) -> cst.Module | None:
    """``precision="bf16-mixed"`` (or ``"16-mixed"``) on every ``Fabric(...)`` of the script,
    or on the setting it reads (an argparse default, a constant: see knobs.compose); None when
    each already sets it. Raises YoursToSet when that setting is the user's to set (a value
    from outside the file, a ``plugins=`` setting that may hold a precision plugin); CannotAct
    when the Fabric is built elsewhere, sets another precision, when the trained model is not
    set up by Fabric (its forward would not be autocast), or when the script already autocasts
    on its own."""
    value = PRECISIONS[wanted]
    calls = fabric_calls(script)
    if not calls:
        raise CannotAct(
            back.call,
            "the Fabric behind this backward call is not built in this file; set "
            f'precision="{value}" where Fabric(...) is built',
        )
    _refuse_old_lightning(script, calls[0], f'Fabric(precision="{value}")')
    swaps: dict[int, cst.BaseExpression] = {}
    knobs: dict[int, cst.BaseExpression] = {}  # the settings a precision= reads
    kept: list[YoursToSet] = []
    for call in calls:
        for key in ("precision", "plugins"):
            refuse_hidden_keyword(script, call, key)
        current = keyword(call, "precision")
        plugins = keyword(call, "plugins")
        if plugins is not None and not isinstance(plugins.value, (cst.Name, cst.Attribute)):
            raise CannotAct(
                plugins,
                f"Fabric(...) takes plugins={script.code(plugins.value)}, which may set its "
                f'precision; set precision="{value}" there yourself',
            )
        if current is not None:
            try:
                knobs.update(_keep_precision(script, current, value, plugins, notes))
            except YoursToSet as exc:
                kept.append(exc)
        elif plugins is not None:  # a setting of the user's that may hold a precision plugin
            kept.append(_settings(script, call, None, plugins, value))
        else:
            swaps[id(call)] = add_keyword(call, "precision", f'"{value}"')
    _set_up_model(script, back, "precision")
    _refuse_own_autocast(script, back)
    raise_kept(kept, edited=bool(swaps or knobs))
    if value == "16-mixed":
        _refuse_unscaled_step(script, back)
    changes: dict[int, edits.Replace] = {}
    edit = edits.replace_calls(swaps)
    for call in calls:
        if id(call) in swaps:
            stmt = script.statement_of(call)
            if stmt is None:
                raise CannotAct(call, "Fabric(...) is built outside a plain statement")
            changes[id(stmt)] = edit
    return edits.apply(script.module, changes, knobs) if changes or knobs else None


def _keep_precision(
    script: Script, current: cst.Arg, value: str, plugins: cst.Arg | None, notes: Notes
) -> dict[int, cst.BaseExpression]:
    """The swaps that make ``precision=`` mean ``value``: none when it already does (and no
    plugin may override it), the setting's own literal when it reads one (knobs.compose).
    Raises CannotAct when it is another literal or no value can be set, and
    :class:`YoursToSet` when the setting is the user's to set."""
    literal = current.value
    call = script.parents.get(id(current))
    assert isinstance(call, cst.Call)
    if isinstance(literal, (cst.SimpleString, cst.Integer)):
        if str(literal.evaluated_value) not in _SAME[value]:
            raise CannotAct(
                current,
                f"Fabric(...) already sets precision={script.code(literal)}; set it to "
                f'"{value}" there instead of adding a second mixed precision',
            )
        if plugins is None:
            return {}
    if plugins is not None:
        raise _settings(script, call, current, plugins, value)
    refusal = CannotAct(
        current,
        f"Fabric(...) takes its precision from `{script.code(literal)}`, a setting of yours; "
        f'set that to "{value}" instead of the codemod overriding it',
    )
    return compose(script, [literal], f'"{value}"', "precision", refusal, notes)


def _settings(
    script: Script, call: cst.Call, current: cst.Arg | None, plugins: cst.Arg | None, value: str
) -> YoursToSet:
    """Fabric's precision kept as the user's settings (``precision=``, ``plugins=``) decide."""
    named = [f"`{script.code(a.value)}`" for a in (current, plugins) if a is not None]
    plugin = " and no precision plugin in it" if plugins is not None else ""
    node = current or plugins
    source = f"Fabric(...) takes its precision from {' and '.join(named)}"
    return YoursToSet(
        node,
        f"{source} (line {script.line(call)}), "
        f"{'settings' if len(named) > 1 else 'a setting'} of yours; set "
        f'precision to "{value}"{plugin} yourself',
        CannotAct(
            node,
            f'{source}; set precision to "{value}"{plugin} yourself on every Fabric(...) the '
            "script builds, or let the codemod set it on each",
        ),
    )


def own_sync(script: Script, back: Backward, n: int) -> bool:
    """True when the backward call already runs under ``no_backward_sync(model,
    enabled=flag)`` whose flag counts windows of ``n`` (this codemod's own rewrite, or the
    user's with the same window): nothing to add. Raises CannotAct for any other
    ``no_backward_sync`` around it: the script accumulates in Fabric's way on its own."""
    for a in script.ancestors(back.stmt):
        if not isinstance(a, cst.With):
            continue
        for item in a.items:
            call = item.item
            if not (
                isinstance(call, cst.Call)
                and (dotted(call.func) or "").endswith(".no_backward_sync")
            ):
                continue
            enabled = keyword(call, "enabled")
            flag = enabled.value if enabled is not None else None
            value = single_value(script, flag.value) if isinstance(flag, cst.Name) else None
            windows = [int_value(script, o) for o in modulo_operands(value)] if value else []
            if windows == [n]:
                return True
            raise CannotAct(
                a,
                "the script already accumulates gradients with Fabric's no_backward_sync "
                f"(line {script.line(a)}); set its own window to {n} instead of adding a "
                "second accumulation",
            )
    return False


@dataclass(frozen=True)
class SyncWindow:
    """Fabric's ``no_backward_sync`` around a micro-step that does not end its window."""

    flag: str
    """The name that tells whether this micro-step accumulates (``is_accumulating``)."""
    header: str

    def wrap(self, accumulating: str, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """``flag = accumulating`` and ``body`` (forward and backward) under the header."""
        first, *rest = body
        flag = edits.statement(f"{self.flag} = {accumulating}\n")
        block = edits.wrap(self.header, [first.with_changes(leading_lines=()), *rest])
        return [flag.with_changes(leading_lines=first.leading_lines), block]


def sync_window(script: Script, back: Backward) -> SyncWindow:
    """The :class:`SyncWindow` for ``back``; raises CannotAct when the trained model is not set
    up by Fabric (``no_backward_sync`` only takes a model that ``fabric.setup`` returned)."""
    model = _set_up_model(script, back, "accumulation")
    _refuse_old_lightning(script, back.call, "fabric.no_backward_sync(model, enabled=...)")
    fabric = script.code(receiver(back.call))  # type: ignore[arg-type]
    flag = script.fresh(("is_accumulating",), back.function)
    return SyncWindow(flag, f"with {fabric}.no_backward_sync({model}, enabled={flag})")


def setup_call(script: Script, name: str) -> cst.Call | None:
    """The ``fabric.setup(name, ...)`` / ``fabric.setup_module(name)`` (or
    ``fabric.setup_optimizers(name)``) whose result is assigned back to ``name``."""
    for call in script.calls:
        func = call.func
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value in (*_SETUP, "setup_optimizers")
            and is_fabric(script, func.value, script.function_of(call))
        ):
            continue
        args = [a.value for a in call.args if a.keyword is None and not a.star]
        index = next((i for i, a in enumerate(args) if dotted(a) == name), None)
        stmt = script.statement_of(call)
        if index is None or stmt is None or len(stmt.body) != 1:
            continue
        small = stmt.body[0]
        if not isinstance(small, cst.Assign) or small.value is not call:
            continue
        target = small.targets[-1].target
        if isinstance(target, (cst.Tuple, cst.List)):
            elements = target.elements
            target = elements[index].value if index < len(elements) else None
        elif index != 0:
            continue
        if target is not None and dotted(target) == name:
            return call
    return None


def setup_each(script: Script, models: str) -> bool:
    """True when a ``for`` loop over the indices of the list ``models`` sets each one up, in
    its body and unconditionally: ``for i in range(len(models)): models[i], optimizers[i] =
    fabric.setup(models[i], optimizers[i])`` (``range(k)`` as written where ``models =
    [... for _ in range(k)]`` is built counts as its indices too)."""
    built = [
        small.value
        for stmt in simple_statements(script.module)
        for small in stmt.body
        if isinstance(small, cst.Assign) and any(dotted(t.target) == models for t in small.targets)
    ]
    indices = {f"range(len({models}))"}
    if len(built) == 1 and isinstance(built[0], cst.ListComp):
        indices.add(script.code(built[0].for_in.iter))
    for loop in script.loops:
        if (
            not isinstance(loop, cst.For)
            or not isinstance(loop.target, cst.Name)
            or script.code(loop.iter) not in indices
            or not isinstance(loop.body, cst.IndentedBlock)
        ):
            continue
        element = f"{models}[{loop.target.value}]"
        for stmt in loop.body.body:
            small = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
            if not isinstance(small, cst.Assign) or not isinstance(small.value, cst.Call):
                continue
            call = small.value
            func = call.func
            if not (
                isinstance(func, cst.Attribute)
                and func.attr.value in _SETUP
                and is_fabric(script, func.value, script.function_of(call))
            ):
                continue
            args = [script.code(a.value) for a in call.args if a.keyword is None and not a.star]
            target = small.targets[-1].target
            bound = (
                [script.code(e.value) for e in target.elements]
                if isinstance(target, (cst.Tuple, cst.List))
                else [script.code(target)]
            )
            if args[:1] == [element] and bound[:1] == [element]:
                return True
    return False


def setup_wraps(script: Script, call: cst.Call, model: str) -> bool:
    """True when ``call`` is a Fabric's ``setup(model, ...)`` or ``setup_module(model)``:
    it wraps the model in DDP or FSDP when the run is distributed."""
    func = call.func
    return (
        isinstance(func, cst.Attribute)
        and func.attr.value in _SETUP
        and any(a.keyword is None and dotted(a.value) == model for a in call.args)
        and is_fabric(script, func.value, script.function_of(call))
    )


def _refuse_old_lightning(script: Script, node: cst.CSTNode, edit: str) -> None:
    """Raise CannotAct when the project's pins admit a Lightning before 2.0, whose Fabric
    does not take the "-mixed" precision names; the accumulation idiom is held to the same
    release, the one whose documentation it follows."""
    for package in ("lightning", "lightning-fabric"):
        if why := too_old(script.pins, package, "2.0", edit):
            raise CannotAct(node, why)


def _set_up_model(script: Script, back: Backward, transform: str) -> str:
    """The name, where ``back`` runs, of the model the optimizer trains; raises CannotAct when
    it cannot be told or Fabric does not set it up (every model of the list, for one optimizer
    per model of a list)."""
    site = script.optimizer
    model = model_at_step(script, site, back.function)
    if site.each is not None:
        if not setup_each(script, site.each):
            raise CannotAct(
                site.call,
                f"not every model of `{site.each}` is set up by Fabric (`for i in "
                f"range(len({site.each})): {site.each}[i], ... = fabric.setup("
                f"{site.each}[i], ...)`), so Fabric cannot be told to autocast or skip the "
                "gradient sync of each",
            )
        return model
    if setup_call(script, model) is None:
        does = (
            "would not autocast its forward"
            if transform == "precision"
            else "cannot skip its gradient sync (no_backward_sync takes a set-up model)"
        )
        raise CannotAct(
            site.call,
            f"`{model}` is not set up by Fabric (`{model}, optimizer = fabric.setup({model}, "
            f"optimizer)` or `{model} = fabric.setup_module({model})`), so Fabric {does}",
        )
    return model


def _refuse_own_autocast(script: Script, back: Backward) -> None:
    """Raise CannotAct when the step already runs under a torch autocast (Fabric's own
    ``fabric.autocast()`` follows its precision, so it is welcome)."""
    container = back.loop or back.function or script.module
    for stmt in [back.stmt, *simple_statements(container)]:
        for a in script.ancestors(stmt):
            if not isinstance(a, cst.With):
                continue
            for item in a.items:
                call = item.item
                if "autocast" not in script.code(call):
                    continue
                func = call.func if isinstance(call, cst.Call) else None
                if isinstance(func, cst.Attribute) and is_fabric(
                    script, func.value, script.function_of(a)
                ):
                    continue
                raise CannotAct(
                    a,
                    "the script already runs its step under its own autocast (line "
                    f"{script.line(a)}); with Fabric, set its precision instead and drop this "
                    "autocast",
                )


def _refuse_unscaled_step(script: Script, back: Backward) -> None:
    """Raise CannotAct where ``16-mixed``'s loss scaling would go wrong: gradients clipped by
    torch directly (still scaled; ``fabric.clip_gradients`` unscales first), or an optimizer
    that Fabric did not set up (its step would not unscale)."""
    container = back.loop or back.function or script.module
    for stmt in script.boundary_statements(container):
        for call in script.calls:
            name = dotted(call.func) or ""
            if script.inside(call, stmt) and name.endswith(("clip_grad_norm_", "clip_grad_value_")):
                raise CannotAct(
                    call,
                    'with precision="16-mixed" Fabric scales the loss, and this clips the '
                    "scaled gradients: use fabric.clip_gradients(model, optimizer, ...)",
                )
    site = script.optimizer
    if setup_call(script, site.target) is None:
        raise CannotAct(
            site.call,
            f'with precision="16-mixed" the optimizer must be set up by Fabric (`{site.target} '
            f"= fabric.setup_optimizers({site.target})` or fabric.setup(model, "
            f"{site.target})) so that its step unscales the gradients",
        )
