"""FG504: scaler.update() outside the accumulation guard that holds scaler.step()."""

from __future__ import annotations

import libcst as cst

from freezegen.check.outline import Outline
from freezegen.check.rule import LoopRule


class ScalerUpdatePerMicroStep(LoopRule):
    code = "FG504"
    name = "scaler-update-per-micro-step"
    summary = (
        "scaler.update() runs every micro-step while scaler.step() runs on window boundaries: "
        "it fails with 'No inf checks were recorded'."
    )
    needles = (b"caler", b"update(", b"%")
    valid = (
        """\
import torch

scaler = torch.amp.GradScaler("cuda")
for step, batch in enumerate(loader):
    with torch.autocast("cuda", dtype=torch.float16):
        loss = model(batch).mean() / accum
    scaler.scale(loss).backward()
    if (step + 1) % accum == 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
""",
        """\
import torch

scaler = torch.amp.GradScaler("cuda")
for batch in loader:
    # no accumulation: step and update every iteration
    loss = model(batch).mean()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad()
""",
    )
    invalid = (
        """\
import torch

scaler = torch.amp.GradScaler("cuda")
for step, batch in enumerate(loader):
    loss = model(batch).mean() / accum
    scaler.scale(loss).backward()
    if (step + 1) % accum == 0:
        scaler.step(optimizer)
        optimizer.zero_grad()
    scaler.update()
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(
            c.method == "update"
            and outline.role(c.receiver) == "scaler"
            and outline.every_micro_step(c)
            for c in outline.calls
        )

    def check_loop(self, loop: cst.For | cst.While) -> None:
        facts = self.ctx.loop(loop)
        if not facts.accumulates:
            return
        for event in facts.events:
            if (
                event.is_call
                and not event.nested
                and event.guard is None
                and event.method == "update"
                and self.ctx.role(event.receiver) == "scaler"
            ):
                self.report(
                    event.node,
                    f"{event.name}() runs every micro-step but the optimizer steps only on "
                    "window boundaries: an update with no step since the last one fails "
                    "('No inf checks were recorded prior to update')",
                    help="move it into the `if` that calls scaler.step(optimizer), after the step",
                )
