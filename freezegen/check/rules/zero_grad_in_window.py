"""FG505: zero_grad() every micro-step while the optimizer steps every N."""

from __future__ import annotations

import libcst as cst

from freezegen.check.outline import Outline
from freezegen.check.rule import LoopRule


class ZeroGradInWindow(LoopRule):
    code = "FG505"
    name = "zero-grad-in-window"
    summary = (
        "zero_grad() runs every micro-step inside an accumulation window: "
        "all but the last micro-step's gradients are thrown away."
    )
    needles = (b"zero_grad", b"%", b"step(")
    valid = (
        """\
def train(model, loader, optimizer, accum):
    optimizer.zero_grad()
    for step, batch in enumerate(loader):
        loss = model(batch).mean() / accum
        loss.backward()
        if (step + 1) % accum == 0:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
""",
        """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
        if step % accum == 0:
            optimizer.zero_grad()  # start of a window
        (model(batch).mean() / accum).backward()
        if (step + 1) % accum == 0:
            optimizer.step()
""",
        """\
import torch


def train(model, loader, optimizer):
    for batch in loader:
        optimizer.zero_grad()
        model(batch).mean().backward()
        optimizer.step()
""",
    )
    invalid = (
        """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        loss = model(batch).mean() / accum
        loss.backward()
        if (step + 1) % accum == 0:
            optimizer.step()
""",
        """\
import torch


class Trainer:
    def fit(self, loader):
        for epoch in range(self.epochs):
            for i, batch in enumerate(loader):
                self.model.zero_grad()
                loss = self.model(batch) / self.accum
                loss.backward()
                if (i + 1) % self.accum != 0:
                    continue
                self.optimizer.step()
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(c.method == "zero_grad" and outline.every_micro_step(c) for c in outline.calls)

    def check_loop(self, loop: cst.For | cst.While) -> None:
        facts = self.ctx.loop(loop)
        if not facts.accumulates:
            return
        for event in facts.events:
            if (
                event.is_call
                and not event.nested
                and event.guard is None
                and event.method == "zero_grad"
            ):
                self.report(
                    event.node,
                    f"{event.name}() runs every micro-step but the optimizer steps only "
                    "on window boundaries: it discards the gradients accumulated so far",
                    help="call it right after optimizer.step(), inside the same `if`",
                )
