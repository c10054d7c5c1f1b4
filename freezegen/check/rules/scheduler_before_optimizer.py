"""FG509: the LR scheduler stepped before the optimizer in the same loop."""

from __future__ import annotations

import libcst as cst

from freezegen.check.outline import Outline, within
from freezegen.check.rule import LoopRule


class SchedulerBeforeOptimizer(LoopRule):
    code = "FG509"
    name = "scheduler-before-optimizer"
    summary = (
        "scheduler.step() comes before optimizer.step() in the loop: the first learning rate "
        "of the schedule is skipped."
    )
    needles = (b"sched", b".step(")
    valid = (
        """\
import torch

scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)
for epoch in range(10):
    for batch in loader:
        loss = model(batch).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    scheduler.step()
""",
        """\
import torch

for step, batch in enumerate(loader):
    (model(batch).mean() / 4).backward()
    if (step + 1) % 4 == 0:
        scaler.step(optimizer)
        scaler.update()
        lr_scheduler.step()
        optimizer.zero_grad()
""",
        """\
import torch


def fit(model, loader, optimizer, scheduler, epochs):
    for epoch in range(epochs):
        train_one_epoch(model, loader, optimizer)  # steps the optimizer inside
        scheduler.step()
""",
    )
    invalid = (
        """\
import torch

scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=30)
for epoch in range(100):
    scheduler.step()
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
""",
        """\
import torch
from transformers import get_linear_schedule_with_warmup

warmup = get_linear_schedule_with_warmup(opt, 100, 1000)
for batch in loader:
    warmup.step()
    model(batch).loss.backward()
    opt.step()
    opt.zero_grad()
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        # a loop's events run in source order (an outer call before the calls inside it), so a
        # scheduler step before the loop's first optimizer step starts no later than some
        # optimizer step of the loop
        schedulers = outline.steps("scheduler")
        optimizers = outline.steps("optimizer", "scaler")
        return any(
            s.position <= o.position
            for loop in outline.loops
            for s in schedulers
            if within(s.position, loop)
            for o in optimizers
            if within(o.position, loop)
        )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._reported: set[int] = set()

    def check_loop(self, loop: cst.For | cst.While) -> None:
        facts = self.ctx.loop(loop)
        if not facts.steps:
            return
        first_step = facts.steps[0]
        for event in facts.events:
            if event is first_step:
                return
            if (
                event.is_call
                and event.method == "step"
                and self.ctx.role(event.receiver) == "scheduler"
                and id(event.node) not in self._reported
            ):
                self._reported.add(id(event.node))
                self.report(
                    event.node,
                    f"{event.name}() runs before {first_step.name}() in this loop: the "
                    "schedule advances before the first update and skips its first value",
                    help=f"call {event.name}() after {first_step.name}()",
                )
