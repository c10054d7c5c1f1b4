"""FG502: gradients clipped while still multiplied by the GradScaler's scale.

A clip is reported when some path through its function (or module) uses the GradScaler and
reaches the clip with no ``unscale_`` (or ``step``) since the last ``scaler.scale``. Paths are
those of :mod:`freezegen.check.paths`: the ``else:`` of ``if self.scaler:`` (or of ``if
args.amp:``, ``if scaler is not None:``), where the loss is not scaled, is a path without the
scaler, even when a later ``if`` on the same flag unscales.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.outline import Outline
from freezegen.check.paths import walk_paths
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
        """\
import torch


def train_step(model, optimizer, scaler, loss, args):
    if not args.amp:  # the plain path clips unscaled gradients
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
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

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        clips = any(
            (c.qualified or "").startswith("torch.nn.utils.") and c.method in _CLIPS
            for c in outline.calls
        )
        return clips and any(
            c.method in _SCALER_CALLS and c.receiver and outline.role(c.receiver) == "scaler"
            for c in outline.calls
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._check(node.body)  # the module's own statements; functions are visited apart

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._check(node.body.body)

    def _check(self, body: Sequence[cst.CSTNode]) -> None:
        clips: dict[int, tuple[cst.Call, str]] = {}

        def transfer(state: _State, call: cst.Call) -> _State:
            name = dotted(call.func) or ""
            receiver, _, method = name.rpartition(".")
            if method in _SCALER_CALLS and receiver and self.ctx.role(receiver) == "scaler":
                if method == "scale":  # new gradients, multiplied by the scale
                    return _State(True, False, state.pending)
                # scaler.step unscales what unscale_ has not
                return _State(True, state.unscaled or method in ("unscale_", "step"), state.pending)
            qualified = self.ctx.names.qualified(call.func) or ""
            if qualified.startswith("torch.nn.utils.") and method in _CLIPS and not state.unscaled:
                clips[id(call)] = (call, method)
                return _State(state.scales, False, state.pending | {id(call)})
            return state

        ends = walk_paths(body, _State(False, False, frozenset()), transfer)
        flagged = set().union(*(end.pending for end in ends if end.scales))
        for key, (node, method) in clips.items():
            if key in flagged:
                self.report(
                    node,
                    f"{method}() before scaler.unscale_(optimizer): the gradients are still "
                    "multiplied by the loss scale, so the clipping threshold is wrong",
                    help="call scaler.unscale_(optimizer) right before clipping",
                )


_SCALER_CALLS = ("scale", "unscale_", "step", "update")
_CLIPS = ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm")


class _State(NamedTuple):
    """One path so far: does it use the GradScaler, are the gradients unscaled, and the clips
    it made before any unscale_."""

    scales: bool
    unscaled: bool
    pending: frozenset[int]
