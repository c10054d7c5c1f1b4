"""FG503: gradients accumulated over N micro-steps from an undivided loss."""

from __future__ import annotations

import ast
import re

import libcst as cst

from freezegen.check.loops import Event, modulo_operands
from freezegen.check.outline import Assignment, Outline
from freezegen.check.rule import LoopRule

_SCALING_METHODS = ("div", "div_", "mul", "mul_", "__truediv__")


class LossNotDivided(LoopRule):
    code = "FG503"
    name = "loss-not-divided"
    summary = (
        "The optimizer steps every N micro-steps but the loss is not divided by N: "
        "the update is N times too large."
    )
    needles = (b"backward", b"%", b"step(")
    valid = (
        """\
import torch


def train(model, loader, optimizer, accum_steps=4):
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss = loss / accum_steps
        loss.backward()
        if (step + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
""",
        """\
import torch

scaler = torch.amp.GradScaler("cuda")


def train(model, loader, optimizer, args):
    for step, batch in enumerate(loader):
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(**batch).loss
        scaler.scale(loss / args.gradient_accumulation_steps).backward()
        if step % args.gradient_accumulation_steps != 0:
            continue
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
""",
        """\
import torch


def train(model, loader, optimizer, accelerator, accum):
    for step, batch in enumerate(loader):
        outputs = model(**batch)
        loss = outputs.loss
        loss /= accum
        accelerator.backward(loss)
        if step % accum == 0 or step == len(loader) - 1:
            optimizer.step()
            optimizer.zero_grad()
        if step % 100 == 0:
            print(loss.item())
""",
        """\
import torch


def compute_loss(model, batch, accum):
    return model(batch).mean() / accum


def train(model, loader, optimizer, accum):
    for i, batch in enumerate(loader):
        loss = compute_loss(model, batch, accum)
        loss.backward()
        if (i + 1) % accum == 0:
            optimizer.step()
            optimizer.zero_grad()
""",
        """\
import torch


def train(model, loader, optimizer):
    # no accumulation: stepping every micro-step needs no division
    for step, batch in enumerate(loader):
        loss = model(batch).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 10 == 0:
            print(step, loss.item())
""",
    )
    invalid = (
        """\
import torch


def train(model, loader, optimizer, accum_steps=4):
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if (step + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
""",
        """\
import torch

scaler = torch.amp.GradScaler("cuda")
for epoch in range(3):
    for step, batch in enumerate(loader):
        with torch.autocast("cuda", dtype=torch.float16):
            out = model(**batch)
        scaler.scale(out.loss).backward()
        if step % 8 == 0:
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        """:meth:`check_loop` and its helpers below, on ``ast`` (not the window's division)."""
        for call in outline.calls:
            if call.attribute != "backward" or not outline.every_micro_step(call):
                continue
            loss = _backward_loss_ast(call.node)
            if loss is None:
                return True  # cannot tell which argument
            if _scaling_ast(loss):
                continue
            if isinstance(loss, ast.Name):
                assigned = outline.assigned_before(loss.id, call)
                if assigned is None:
                    return True
                if not assigned or any(_scaling_assignment(a) for a in assigned):
                    continue
            return True
        return False

    def check_loop(self, loop: cst.For | cst.While) -> None:
        facts = self.ctx.loop(loop)
        if not facts.accumulates:
            return
        windows = [w for g in facts.guards for w in modulo_operands(g.test)]
        window = self.ctx.module.code_for_node(windows[0]) if windows else "N"
        if any(self._divides_somewhere(w) for w in windows):
            return
        for i, event in enumerate(facts.events):
            if event.nested or event.guard is not None or not event.is_call:
                continue
            loss = _backward_loss(event)
            if loss is None or _scaled(loss, facts.events[:i]) is not False:
                continue
            self.report(
                event.node,
                f"gradients accumulate over `{window}` micro-steps but the loss is not divided "
                f"by `{window}`: each optimizer step is `{window}` times too large",
                help=f"backpropagate loss / {window}",
            )

    def _divides_somewhere(self, window: cst.BaseExpression) -> bool:
        """True when the file divides by the window anywhere (e.g. in a loss helper)."""
        code = self.ctx.module.code_for_node(window)
        return re.search(r"/=?\s*\(?\s*" + re.escape(code) + r"\b", self.ctx.text) is not None


def _backward_loss(event: Event) -> cst.BaseExpression | None:
    """The loss that ``event`` backpropagates, or None when it is not a backward call."""
    call = event.node
    assert isinstance(call, cst.Call)
    if not isinstance(call.func, cst.Attribute) or call.func.attr.value != "backward":
        return None
    target = call.func.value
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    if positional and isinstance(target, (cst.Name, cst.Attribute)):
        return positional[0]  # accelerator.backward(loss), fabric.backward(loss)
    if (
        isinstance(target, cst.Call)
        and isinstance(target.func, cst.Attribute)
        and target.func.attr.value == "scale"
        and target.args
    ):
        return target.args[0].value  # scaler.scale(loss).backward()
    return target


def _scaled(loss: cst.BaseExpression, before: list[Event]) -> bool | None:
    """True when ``loss`` is visibly divided or multiplied; None when it cannot be told."""
    if _scaling(loss):
        return True
    if isinstance(loss, cst.Name):
        assigned = [e for e in before if not e.is_call and e.name == loss.value]
        if not assigned:
            return None  # computed outside the loop: cannot tell
        return any(
            isinstance(e.augmented, (cst.DivideAssign, cst.MultiplyAssign))
            or (e.augmented is None and e.value is not None and _scaling(e.value))
            for e in assigned
        )
    return False


def _scaling(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.BinaryOperation):
        return isinstance(expr.operator, (cst.Divide, cst.Multiply))
    return (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in _SCALING_METHODS
    )


def _backward_loss_ast(call: ast.Call) -> ast.expr | None:
    """:func:`_backward_loss` of a ``.backward`` call in ``ast``; None when unclear."""
    assert isinstance(call.func, ast.Attribute)
    target = call.func.value
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    if positional and isinstance(target, (ast.Name, ast.Attribute)):
        return positional[0]
    if (
        isinstance(target, ast.Call)
        and isinstance(target.func, ast.Attribute)
        and target.func.attr == "scale"
        and (target.args or target.keywords)
    ):
        # libcst's first argument, whatever its kind: clear only for a plain positional one
        if target.keywords or isinstance(target.args[0], ast.Starred):
            return None
        return target.args[0]
    return target


def _scaling_ast(expr: ast.expr) -> bool:
    """:func:`_scaling` in ``ast``."""
    if isinstance(expr, ast.BinOp):
        return isinstance(expr.op, (ast.Div, ast.Mult))
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr in _SCALING_METHODS
    )


def _scaling_assignment(stmt: Assignment) -> bool:
    """What :func:`_scaled` accepts of an assignment: ``/=``, ``*=``, or ``= <scaling>``."""
    if isinstance(stmt, ast.AugAssign):
        return isinstance(stmt.op, (ast.Div, ast.Mult))
    return stmt.value is not None and _scaling_ast(stmt.value)
