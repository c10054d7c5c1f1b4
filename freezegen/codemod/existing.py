"""What a training script already does about accumulation, found before anything is added.

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
from freezegen.check.rules._calls import keyword
from freezegen.codemod.script import Backward, CannotAct, Script, simple_statements


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


def int_value(script: Script, expr: cst.BaseExpression | None) -> int | None:
    """The integer ``expr`` always holds: a literal, or a name assigned one literal only."""
    if isinstance(expr, cst.Integer):
        return int(expr.evaluated_value)
    if not isinstance(expr, cst.Name):
        return None
    values = [
        small.value
        for stmt in simple_statements(script.module)
        for small in stmt.body
        if isinstance(small, (cst.Assign, cst.AugAssign, cst.AnnAssign))
        and expr.value in _assigned_names(small)
    ]
    if len(values) == 1 and isinstance(values[0], cst.Integer):
        return int(values[0].evaluated_value)
    return None


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
        outer = [a for a in script.ancestors(loop) if isinstance(a, (cst.For, cst.While))]
        stepping = next((o for o in outer if ctx.loop(o).steps), None)
        if guards:
            node = guards[0]
            operands = modulo_operands(guards[0].test)
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
    return OwnAccumulation(node, window, f"by hand ({', '.join(parts)})", by_hand=True)


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
    if block is not None:
        item = next(i.item for i in block.items if ".accumulate(" in script.code(i.item))
        parts.append(f"{script.code(item)} at line {script.line(block)}")
        node = node or block
    if node is None:
        return None
    how = f"through Accelerate ({', '.join(parts)})"
    return OwnAccumulation(node, window, how, by_hand=False, block=block)


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
    return next((c for c in candidates if "accum" in script.code(c).lower()), None)


def _is_range(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and dotted(expr.func) == "range" and len(expr.args) == 1


def _assigned_names(small: cst.BaseSmallStatement) -> set[str]:
    targets = (
        [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]  # type: ignore[attr-defined]
    )
    return {name for t in targets if (name := dotted(t)) is not None}
