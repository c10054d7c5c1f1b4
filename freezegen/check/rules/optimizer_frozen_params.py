"""FG508: an optimizer built over model.parameters() in a file that freezes parameters."""

from __future__ import annotations

import ast

import libcst as cst

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import dotted
from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import keyword, positional
from freezegen.check.rules._freezing import FreezeTracker
from freezegen.diagnostics import Severity


class OptimizerFrozenParams(CheckRule):
    code = "FG508"
    name = "optimizer-frozen-params"
    summary = (
        "The optimizer gets every parameter although the file freezes some: "
        "pass only those with requires_grad."
    )
    severity = Severity.WARNING
    needles = (b"requires_grad", b"parameters()")  # a helper may freeze with no `False` written
    valid = (
        """\
import torch

for p in model.embeddings.parameters():
    p.requires_grad = False
optimizer = torch.optim.AdamW(
    (p for p in model.parameters() if p.requires_grad), lr=2e-5
)
""",
        """\
import torch

model.encoder.requires_grad_(False)
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.SGD(trainable, lr=0.1, momentum=0.9)
""",
        """\
import torch

# nothing is frozen here: every parameter trains
model.requires_grad_(True)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
""",
        """\
import torch


def set_trainable(module, trainable):
    for p in module.parameters():
        p.requires_grad = trainable


set_trainable(model, True)  # the helper could freeze; this file never asks it to
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
""",
    )
    invalid = (
        """\
import torch

for p in model.embeddings.parameters():
    p.requires_grad = False
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
""",
        """\
from torch.optim import SGD


def build(model):
    model.backbone.requires_grad_(False)
    return SGD([{"params": model.parameters(), "lr": 0.1}], momentum=0.9)
""",
        """\
import torch


def set_trainable(module, trainable):
    for p in module.parameters():
        p.requires_grad = trainable


set_trainable(model.encoder, trainable=False)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return outline.may_freeze and any(
            outline.imports.callee(c.name).rsplit(".", 1)[-1] in OPTIMIZERS
            and (params := c.argument(0, "params")) is not None
            and any(_parameters_call(n) for n in ast.walk(params))
            for c in outline.calls
        )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._freezing = FreezeTracker()
        self._candidates: list[tuple[cst.BaseExpression, str, str]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._freezing.enter(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._freezing.leave()

    def visit_Call(self, node: cst.Call) -> None:
        self._freezing.call(node)
        name = dotted(node.func) or ""
        qualified = self.ctx.names.qualified(node.func) or name
        optimizer = qualified.rsplit(".", 1)[-1]
        # torch.optim.AdamW, bnb.optim.AdamW8bit, transformers' Adafactor... by class name
        if optimizer not in OPTIMIZERS:
            return
        params = positional(node)[:1] or [keyword(node, "params")]
        if params[0] is None:
            return
        for expr in _all_parameters(params[0].value):
            self._candidates.append((expr, optimizer, self.ctx.module.code_for_node(expr)))

    def visit_Assign(self, node: cst.Assign) -> None:
        self._freezing.assign(node)

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._freezing.freezes:
            return
        for expr, optimizer, code in self._candidates:
            owner = code.rsplit(".parameters", 1)[0]
            self.report(
                expr,
                f"{optimizer} gets every parameter of `{owner}`, but this file freezes "
                "parameters: frozen ones still sit in the optimizer (and train again if "
                "anything re-enables their gradients)",
                help=f"pass (p for p in {code[:-2]}() if p.requires_grad)",
            )


def _all_parameters(expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    """``model.parameters()`` calls fed whole to the optimizer (directly or as a group)."""
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value == "parameters"
    ):
        return [expr]
    found = []
    if isinstance(expr, (cst.List, cst.Tuple)):
        for element in expr.elements:
            if isinstance(element.value, cst.Dict):
                for item in element.value.elements:
                    if (
                        isinstance(item, cst.DictElement)
                        and isinstance(item.key, cst.SimpleString)
                        and item.key.evaluated_value == "params"
                    ):
                        found.extend(_all_parameters(item.value))
    return found


def _parameters_call(node: ast.AST) -> bool:
    """``x.parameters()`` in ``ast``: :func:`_all_parameters` finds these (some of them)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parameters"
    )
