"""Progressive unfreezing that thaws nothing frozen, or is scheduled after training ends."""

from collections.abc import Iterator

from freezegen.arch.freeze import select
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class UnfreezeSchedule(Rule):
    code = "FG107"
    name = "unfreeze-schedule"
    summary = "An unfreeze step that thaws nothing frozen, or falls at or after train.max_steps."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
freeze:
  layers: {first: 6}
  schedule:
    - {at_step: 100, unfreeze: {layers: "4-5"}}
batch: {micro_batch_size: 2, seq_len: 128}
train: {max_steps: 1000}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze:
  layers: {first: 6}
  schedule:
    - {at_step: 100, unfreeze: {layers: "8-9"}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze:
  layers: {first: 6}
  schedule:
    - {at_step: 5000, unfreeze: {layers: "4-5"}}
batch: {micro_batch_size: 2, seq_len: 128}
train: {max_steps: 1000}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        max_steps = ctx.spec.train.max_steps
        plan, arch = ctx.freeze_plan, ctx.architecture
        for i, step in enumerate(ctx.spec.freeze.schedule):
            loc = ("freeze", "schedule", i)
            if step.at_step is not None and step.at_step >= max_steps:
                yield self.at(
                    ctx,
                    (*loc, "at_step"),
                    f"unfreezing at step {step.at_step} never "
                    f"happens: training stops after {max_steps} steps",
                    fix=f"use an at_step below {max_steps}",
                )
            if plan is None or arch is None or ctx.params is None:
                continue
            sel = select(step.unfreeze, ctx.params, arch.num_layers, (*loc, "unfreeze"))
            if sel.names and not (sel.names & plan.frozen):
                yield self.at(
                    ctx,
                    (*loc, "unfreeze"),
                    "this step unfreezes only parameters that were never frozen",
                    fix="select blocks or patterns that the freeze section freezes",
                )
