"""What a training script already does about accumulation and mixed precision, found before
anything is added.

A transform that adds a mechanism the script already has (a second accumulation, a second
autocast) trains wrongly without a word: one update per N*N batches, or one per epoch. So the
transforms ask here first; they keep the script's own mechanism when it already does what was
asked, and otherwise refuse, pointing at the line where the user's own setting lives.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from freezegen.check.context import FileContext
from freezegen.check.loops import modulo_operands
from freezegen.check.names import dotted
from freezegen.check.rules._calls import add_keyword, keyword
from freezegen.codemod.hand_step import hand_step_guards
from freezegen.codemod.scopes import names
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    YoursToSet,
    simple_statements,
    steps_optimizer,
)


@dataclass(frozen=True, eq=False)
class OwnAccumulation:
    """How the script accumulates gradients itself."""

    node: cst.CSTNode
    """Where the refusal points: the step guard, the micro-step loop, the Accelerator call."""
    window: cst.BaseExpression | None
    """The script's own N (``args.gradient_accumulation_steps``, ``4``), when one is written."""
    how: str
    """A located description: ``by hand (loss divided at line 80, ...)``."""
    by_hand: bool
    """True for the script's own code; False for Accelerate's mechanism."""
    block: cst.With | None = None
    """The ``with accelerator.accumulate(model):`` around the backward call, if any."""
    divisor: cst.BaseExpression | None = None
    """What the script divides its loss by (``args.gradient_accumulation_steps``), if it does."""
    assigned: tuple[cst.BaseExpression, ...] = ()
    """What the script assigns to ``accelerator.gradient_accumulation_steps`` once built."""


def int_value(script: Script, expr: cst.BaseExpression | None) -> int | None:
    """The integer ``expr`` always holds: a literal, or a name assigned one literal only."""
    if isinstance(expr, cst.Name):
        expr = single_value(script, expr.value)
    if isinstance(expr, cst.Integer):
        return int(expr.evaluated_value)
    return None


def single_value(script: Script, name: str) -> cst.BaseExpression | None:
    """The value of ``name`` when the file assigns it exactly once (anywhere), else None."""
    values = [
        small.value
        for stmt in simple_statements(script.module)
        for small in stmt.body
        if isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign))
        and name in _assigned_names(small)
    ]
    return values[0] if len(values) == 1 else None


def own_accumulation(script: Script, back: Backward) -> OwnAccumulation | None:
    """The script's own gradient accumulation around ``back``, or None when it has none."""
    return _by_hand(script, back) or _through_accelerate(script, back)


def _by_hand(script: Script, back: Backward) -> OwnAccumulation | None:
    division = _loss_division(script, back)
    parts = []
    if division is not None:
        parts.append(f"loss divided by {script.code(division)} at line {script.line(division)}")
    node: cst.CSTNode | None = None
    window: cst.BaseExpression | None = None
    loop = back.loop
    if loop is not None:
        ctx = FileContext("<codemod>", script.module, script.module.code)
        guards = [e.guard for e in ctx.loop(loop).steps if not e.nested and e.guard is not None]
        guards += hand_step_guards(script, loop)  # a script without an optimizer steps by hand
        outer = [a for a in script.ancestors(loop) if isinstance(a, (cst.For, cst.While))]
        stepping = next((o for o in outer if ctx.loop(o).steps), None)
        # a flag only counts with a divided loss: alone it may be Fabric's no_backward_sync
        flagged = None if guards or division is None else _flag_guard(script, loop)
        if guards or flagged is not None:
            node = guards[0] if guards else flagged
            operands = modulo_operands(_flag_value(script, node.test) or node.test)
            window = operands[0] if operands else None
            every = script.code(window) if window is not None else "some"
            parts.append(
                f"optimizer stepped every {every} micro-batches at line {script.line(node)}"
            )
        elif stepping is not None and not any(not e.nested for e in ctx.loop(loop).steps):
            node = loop  # a micro-step loop inside the loop that steps
            if isinstance(loop, cst.For) and _is_range(loop.iter):
                window = loop.iter.args[0].value  # type: ignore[attr-defined]
            parts.append(
                f"a micro-step loop at line {script.line(loop)} runs inside the loop that "
                f"steps the optimizer (line {script.line(stepping)})"
            )
    if not parts:
        return None
    if node is None:
        assert division is not None
        node, window = division, division
    how = f"by hand ({', '.join(parts)})"
    return OwnAccumulation(node, window, how, by_hand=True, divisor=division)


def _flag_guard(script: Script, loop: cst.For | cst.While) -> cst.If | None:
    """An ``if`` of the loop body that steps the optimizer on a flag counting windows
    (``is_accumulating = i % k != 0`` ... ``if not is_accumulating: optimizer.step()``)."""
    for stmt in loop.body.body:
        if (
            isinstance(stmt, cst.If)
            and _flag_value(script, stmt.test) is not None
            and any(steps_optimizer(dotted(c.func) or "") for c in script.calls_in(stmt.body))
        ):
            return stmt
    return None


def _flag_value(script: Script, test: cst.BaseExpression) -> cst.BaseExpression | None:
    """The value of the flag ``test`` reads (``flag``, ``not flag``) when it is assigned once,
    to an expression holding a modulo; else None."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        test = test.expression
    if not isinstance(test, cst.Name):
        return None
    value = single_value(script, test.value)
    return value if value is not None and modulo_operands(value) else None


def _through_accelerate(script: Script, back: Backward) -> OwnAccumulation | None:
    block = next(
        (
            a
            for a in script.ancestors(back.stmt)
            if isinstance(a, cst.With)
            and any(
                isinstance(i.item, cst.Call) and (dotted(i.item.func) or "").endswith(".accumulate")
                for i in a.items
            )
        ),
        None,
    )
    parts, node, window = [], None, None
    for call in accelerator_calls(script):
        for key in ("gradient_accumulation_steps", "gradient_accumulation_plugin"):
            arg = keyword(call, key)
            if arg is not None:
                parts.append(f"{key}={script.code(arg.value)} at line {script.line(arg)}")
                if node is None:
                    node, window = arg, arg.value if key.endswith("_steps") else None
    assigned = []
    for stmt in simple_statements(script.module):  # accelerator.gradient_accumulation_steps = k
        for small in stmt.body:
            if isinstance(small, cst.Assign) and any(
                isinstance(t.target, cst.Attribute)
                and t.target.attr.value == "gradient_accumulation_steps"
                for t in small.targets
            ):
                assigned.append(small.value)
                parts.append(f"{script.code(small).strip()} at line {script.line(small)}")
                if node is None:
                    node, window = small, small.value
    if block is not None:
        item = next(i.item for i in block.items if ".accumulate(" in script.code(i.item))
        parts.append(f"{script.code(item)} at line {script.line(block)}")
        node = node or block
    if node is None:
        return None
    how = f"through Accelerate ({', '.join(parts)})"
    return OwnAccumulation(node, window, how, by_hand=False, block=block, assigned=tuple(assigned))


def accelerator_calls(script: Script) -> list[cst.Call]:
    """Every ``Accelerator(...)`` call of the script, in source order (each branch's)."""
    return [
        call
        for call in script.calls
        if (script.names.qualified(call.func) or dotted(call.func) or "").rpartition(".")[2]
        == "Accelerator"
    ]


def accelerator_statement(script: Script, call: cst.Call) -> cst.SimpleStatementLine:
    """The statement building ``call``; raises CannotAct where no statement edit can reach it
    (a ``with Accelerator() as a:`` header), since every place that builds it needs the edit."""
    stmt = script.statement_of(call)
    if stmt is None:
        raise CannotAct(call, "Accelerator(...) is built outside a plain statement")
    return stmt


AutocastSite = tuple[cst.With, cst.WithItem]
_DTYPE_OF = {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32"}
_DEFAULT_DTYPE = {"cuda": "fp16", "cpu": "bf16"}
"""What autocast runs in when no dtype is given, per device type."""


def own_autocast(script: Script, nodes: list[cst.CSTNode]) -> AutocastSite | None:
    """The ``with`` (and its item) under which one of ``nodes`` (the loss's statements) runs
    already: an autocast call, or a name bound to one (``with ctx:``)."""
    for node in nodes:
        for a in script.ancestors(node):
            if isinstance(a, cst.With):
                item = next((i for i in a.items if _is_autocast(script, i.item)), None)
                if item is not None:
                    return a, item
    return None


def keep_autocast(
    script: Script, own: AutocastSite, precision: str
) -> dict[int, cst.BaseExpression]:
    """Nothing to swap when the script's own autocast already runs in ``precision`` (``bf16``,
    ``fp16``); the swaps that make an fp16 autocast run in bf16 when that is all the script
    does in fp16 (see :func:`_bf16_for_fp16`). Raises CannotAct, pointing at it, when it runs
    in another, is switched at run time, or its dtype cannot be read."""
    statement, item = own
    wanted = "torch.float16" if precision == "fp16" else "torch.bfloat16"
    call = _autocast_call(script, item.item)
    if call is None:
        how = f"`{script.code(item.item)}`, whose dtype is not known before run time"
    else:
        enabled = keyword(call, "enabled")
        dtype = _autocast_dtype(script, call)
        if enabled is not None and script.code(enabled.value) != "True":
            how = f"switched by enabled={script.code(enabled.value)}"
        elif dtype == precision:
            return {}
        elif dtype is None and (chosen := _autocast_dtype_expr(script, call)) is not None:
            setting = script.code(chosen)
            raise YoursToSet(
                statement,
                f"the script already runs its forward pass under autocast (line "
                f"{script.line(statement)}) with dtype={setting}, chosen at run time; set "
                f"{setting} to {wanted} yourself",
            )
        elif dtype is None:
            how = "with a dtype not known before run time"
        elif precision == "bf16" and dtype == "fp16" and (swaps := _bf16_for_fp16(script, call)):
            return swaps
        else:
            how = f"in {dtype}"
    raise CannotAct(
        statement,
        f"the script already runs its forward pass under autocast ({how}, line "
        f"{script.line(statement)}); set it to {wanted} there instead of adding a second autocast",
    )


def keep_amp_switch(script: Script, own: AutocastSite, back: Backward, precision: str) -> None:
    """For a script whose AMP is one switch (``if use_amp:`` scaling the loss, ``else:`` not,
    :attr:`Script.amp_switch`) over an autocast that the same setting enables
    (``enabled=use_amp``): raise :class:`YoursToSet` saying to turn that setting on (and, when
    the autocast runs in another dtype than ``precision``, where to change it): the script's
    own mixed precision is kept and nothing is added. Returns for any other autocast."""
    switch = script.amp_switch
    statement, item = own
    call = _autocast_call(script, item.item)
    enabled = keyword(call, "enabled") if call is not None else None
    if switch is None or back.twin is None or call is None or enabled is None:
        return
    setting = _bare(script, switch.test)
    if _bare(script, enabled.value) != setting:
        return
    dtype = _autocast_dtype(script, call)
    wanted = "torch.float16" if precision == "fp16" else "torch.bfloat16"
    at = f"line {script.line(statement)}"
    other = ""
    if dtype != precision:
        runs = {"fp16": "torch.float16", "bf16": "torch.bfloat16"}.get(dtype or "", "its dtype")
        other = f"; it autocasts in {runs}: for {wanted} set dtype={wanted} at {at}"
        if precision == "bf16":
            other += " (the GradScaler is then not needed)"
    raise YoursToSet(
        statement,
        f"the script runs its own mixed precision when `{setting}` is true: autocast ({at}) "
        f"and a GradScaler on the same switch (line {script.line(switch)}); set {setting} to "
        f"True yourself{other}",
    )


def _bare(script: Script, expr: cst.BaseExpression) -> str:
    """The code of ``expr`` without its own parentheses (``(args.amp)`` reads ``args.amp``)."""
    if isinstance(expr, (cst.Name, cst.Attribute)):
        expr = expr.with_changes(lpar=[], rpar=[])
    return cst.Module([]).code_for_node(expr)


def _bf16_for_fp16(script: Script, call: cst.Call) -> dict[int, cst.BaseExpression]:
    """The swap that makes an fp16 autocast call run in bf16: its ``torch.float16`` literal
    replaced, or ``dtype=torch.bfloat16`` added where it used the device's fp16 default.

    Empty when that is not provably all there is to it: the file names float16 or calls
    ``.half()`` anywhere else (fp16 weights or inputs of its own), or the dtype is not a
    literal in the call. bf16 has fp32's range, so a GradScaler left in place stays correct.
    """
    torch = script.names.local_for("torch")
    code = script.module.code
    elsewhere = code.count("float16") - script.code(call).count("float16") + code.count(".half(")
    if torch is None or elsewhere or any(a.star for a in call.args):
        return {}
    value = _autocast_dtype_expr(script, call)
    bf16 = cst.parse_expression(f"{torch}.bfloat16")
    if value is None:
        return {id(call): add_keyword(call, "dtype", f"{torch}.bfloat16")}
    if script.names.qualified(value) in ("torch.float16", "torch.half"):
        return {id(value): bf16}
    return {}


def _is_autocast(script: Script, item: cst.BaseExpression) -> bool:
    if "autocast" in script.code(item):
        return True
    if isinstance(item, cst.Name):  # with ctx: where ctx = ... autocast(...)
        value = single_value(script, item.value)
        return value is not None and "autocast" in script.code(value)
    return False


def _autocast_call(script: Script, item: cst.BaseExpression) -> cst.Call | None:
    """The autocast call of a ``with`` item: the item itself, or the one autocast call in the
    value of a name assigned once (``ctx = nullcontext() if cpu else autocast(...)``)."""
    if isinstance(item, cst.Name):
        value = single_value(script, item.value)
        if value is None:
            return None
        calls = [c for c in script.calls if script.inside(c, value) and _is_autocast_callee(c)]
        return calls[0] if len(calls) == 1 else None
    if isinstance(item, cst.Call) and _is_autocast_callee(item):
        return item
    return None


def _is_autocast_callee(call: cst.Call) -> bool:
    return (dotted(call.func) or "").rpartition(".")[2] == "autocast"


def _autocast_dtype_expr(script: Script, call: cst.Call) -> cst.BaseExpression | None:
    """The expression an autocast call takes its dtype from (``dtype=ptdtype``), or None when
    it names none (the device's default)."""
    dtype = keyword(call, "dtype")
    if dtype is not None:
        return dtype.value
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    callee = script.names.qualified(call.func) or dotted(call.func) or ""
    if len(positional) > 1 and callee in ("torch.autocast", "torch.amp.autocast"):
        return positional[1]
    return None


def _autocast_dtype(script: Script, call: cst.Call) -> str | None:
    """``fp16`` or ``bf16`` for the dtype an autocast call uses, None when not known."""
    value = _autocast_dtype_expr(script, call)
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    callee = script.names.qualified(call.func) or dotted(call.func) or ""
    if isinstance(value, cst.Name):
        value = single_value(script, value.value)
    if isinstance(value, cst.Attribute):
        return _DTYPE_OF.get(value.attr.value)
    if value is not None:
        return None
    if callee.startswith(("torch.cuda.amp.", "torch.cpu.amp.")):
        return _DEFAULT_DTYPE[callee.split(".")[1]]
    device = keyword(call, "device_type")
    device_value = device.value if device is not None else (positional or [None])[0]
    if isinstance(device_value, cst.SimpleString):
        return _DEFAULT_DTYPE.get(str(device_value.evaluated_value))
    return None


def refuse_hidden_keyword(script: Script, call: cst.Call, key: str) -> None:
    """Raise CannotAct when a ``**mapping`` argument of ``call`` may set ``key``.

    ``accelerator_log_kwargs = {}`` filled by ``accelerator_log_kwargs["log_with"] = ...`` (the
    no-trainer scripts) provably leaves other keys alone; any other use of the mapping, a
    computed key, or a mapping that is not a dict literal assigned once, may set it.
    """
    for arg in call.args:
        if arg.star == "**" and not _mapping_leaves_unset(script, arg.value, key):
            raise CannotAct(
                arg, f"cannot tell whether `**{script.code(arg.value)}` already sets {key}"
            )


def _mapping_leaves_unset(script: Script, mapping: cst.BaseExpression, key: str) -> bool:
    if not isinstance(mapping, cst.Name):
        return False
    initial = single_value(script, mapping.value)
    if not isinstance(initial, cst.Dict) or any(
        not isinstance(e, cst.DictElement)
        or not isinstance(e.key, cst.SimpleString)
        or e.key.evaluated_value == key
        for e in initial.elements
    ):
        return False
    for use in names(script.module, mapping.value):
        parent = script.parents.get(id(use))
        if isinstance(parent, (cst.Arg, cst.AssignTarget)):
            continue  # the ** itself, or the one assignment of the literal
        if not isinstance(parent, cst.Subscript) or len(parent.slice) != 1:
            return False
        index = parent.slice[0].slice
        if not (
            isinstance(index, cst.Index)
            and isinstance(index.value, cst.SimpleString)
            and index.value.evaluated_value != key
            and isinstance(script.parents.get(id(parent)), cst.AssignTarget)
        ):
            return False
    return True


def _loss_division(script: Script, back: Backward) -> cst.BaseExpression | None:
    """The divisor of ``loss / N`` or ``loss /= N`` that scales the loss for accumulation.

    Only a divisor naming accumulation counts: a loss averaged over two terms is no window.
    """
    candidates: list[cst.BaseExpression] = []
    loss = back.loss
    if isinstance(loss, cst.BinaryOperation) and isinstance(loss.operator, cst.Divide):
        candidates.append(loss.right)
    container = back.loop or back.function or script.module
    for stmt in simple_statements(container):
        for small in stmt.body:
            value = getattr(small, "value", None)
            if isinstance(small, cst.AugAssign) and isinstance(small.operator, cst.DivideAssign):
                candidates.append(small.value)
            elif isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Divide):
                candidates.append(value.right)
    return next(
        (c for c in candidates if any(w in script.code(c).lower() for w in _WINDOW_WORDS)), None
    )


_WINDOW_WORDS = ("accum", "grad_acc", "acc_steps")
"""Words in a divisor that name an accumulation window (gradient_accumulation_steps, accum_iter,
iters_to_accumulate, grad_acc, acc_steps)."""


def _is_range(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and dotted(expr.func) == "range" and len(expr.args) == 1


def _assigned_names(small: cst.BaseSmallStatement) -> set[str]:
    targets = (
        [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]  # type: ignore[attr-defined]
    )
    return {name for t in targets if (name := dotted(t)) is not None}


_LOW_PRECISION_SETUPS = {
    "MixedPrecisionPolicy": "FSDP2's mixed precision (MixedPrecisionPolicy(param_dtype=...))",
    "MixedPrecision": "FSDP's mixed precision (MixedPrecision(param_dtype=...))",
    "set_default_dtype": "a default dtype for the tensors and models it builds "
    "(set_default_dtype(...))",
}
"""Precision a script sets without autocast: an autocast added on top is a second mechanism
(and with a dtype chosen at run time, one that may fight it)."""


_MODEL_DTYPES = {"half": "float16", "bfloat16": "bfloat16", "double": "float64"}
_DTYPE_NAMES = ("float16", "half", "bfloat16", "float64", "double")


def own_precision_setup(script: Script, model: str | None) -> tuple[cst.Call, str] | None:
    """The first call that sets the script's precision another way than autocast (FSDP's
    policy, a default dtype, ``model.double()`` or ``model.to(torch.float16)`` on the trained
    ``model``), and what it is; None when there is none."""
    for call in script.calls:
        name = (script.names.qualified(call.func) or dotted(call.func) or "").rpartition(".")[2]
        if name in _LOW_PRECISION_SETUPS:
            return call, _LOW_PRECISION_SETUPS[name]
        func = call.func
        if model is None or not isinstance(func, cst.Attribute):
            continue
        if dotted(func.value) != model:
            continue
        method = func.attr.value
        if method in _MODEL_DTYPES:
            return call, f"the model's own dtype ({model}.{method}(): {_MODEL_DTYPES[method]})"
        if method == "to" and any(
            (dotted(a.value) or "").rpartition(".")[2] in _DTYPE_NAMES for a in call.args
        ):
            return call, f"the model's own dtype ({script.code(call)})"
    return None
