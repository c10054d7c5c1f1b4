"""FG502: gradients clipped while still multiplied by the GradScaler's scale."""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.rule import CheckRule


class ClipWithoutUnscale(CheckRule):
    code = "FG502"
    name = "clip-without-unscale"
    summary = (
        "Gradients clipped before scaler.unscale_(optimizer): the threshold meets scaled values."
    )
    needles = (b"clip_grad", b"scale")
    valid = (
        """\
import torch

scaler = torch.amp.GradScaler("cuda")


def train_step(model, optimizer, batch):
    with torch.autocast("cuda", dtype=torch.float16):
        loss = model(batch).mean()
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
""",
        """\
import torch
from torch.nn.utils import clip_grad_norm_


def train_step(model, optimizer, batch):
    # no GradScaler (bf16): nothing to unscale
    loss = model(batch).mean()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
""",
    )
    invalid = (
        """\
import torch

scaler = torch.amp.GradScaler("cuda")


def train_step(model, optimizer, batch):
    loss = model(batch).mean()
    scaler.scale(loss).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
""",
        """\
import torch.nn as nn


class Trainer:
    def step(self, batch):
        loss = self.model(batch)
        self.grad_scaler.scale(loss).backward()
        nn.utils.clip_grad_value_(self.model.parameters(), 0.5)
        self.grad_scaler.unscale_(self.optimizer)
        self.grad_scaler.step(self.optimizer)
""",
    )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # per function (innermost first): does it scale? has it unscaled yet? its clip calls
        self._scopes: list[_Scope] = [_Scope()]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(_Scope())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._close(self._scopes.pop())

    def leave_Module(self, original_node: cst.Module) -> None:
        self._close(self._scopes.pop())

    def visit_Call(self, node: cst.Call) -> None:
        scope = self._scopes[-1]
        name = dotted(node.func) or ""
        receiver, _, method = name.rpartition(".")
        if method in ("scale", "unscale_", "step") and self.ctx.role(receiver) == "scaler":
            scope.scales = True
            if method == "unscale_":
                scope.unscaled = True
            return
        qualified = self.ctx.names.qualified(node.func) or ""
        if (
            qualified.startswith("torch.nn.utils.")
            and method in ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm")
            and not scope.unscaled
        ):
            scope.clips.append((node, method))

    def _close(self, scope: _Scope) -> None:
        if not scope.scales:
            return
        for node, method in scope.clips:
            self.report(
                node,
                f"{method}() before scaler.unscale_(optimizer): the gradients are still "
                "multiplied by the loss scale, so the clipping threshold is wrong",
                help="call scaler.unscale_(optimizer) right before clipping",
            )


class _Scope:
    def __init__(self) -> None:
        self.scales = False
        self.unscaled = False
        self.clips: list[tuple[cst.Call, str]] = []
