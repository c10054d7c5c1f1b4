"""Learning-rate warmup as long as the whole run: the peak lr is never reached."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.edit import Edit


class WarmupExceedsSteps(Rule):
    code = "FG114"
    name = "warmup-exceeds-steps"
    summary = "scheduler.warmup_steps is at least train.max_steps."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
scheduler: {name: cosine, warmup_steps: 100}
batch: {micro_batch_size: 2, seq_len: 128}
train: {max_steps: 1000}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
scheduler: {name: cosine, warmup_steps: 1000}
batch: {micro_batch_size: 2, seq_len: 128}
train: {max_steps: 500}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        warmup, steps = ctx.spec.scheduler.warmup_steps, ctx.spec.train.max_steps
        if warmup >= steps:
            yield self.at(
                ctx,
                ("scheduler", "warmup_steps"),
                f"warmup_steps {warmup} >= max_steps {steps}: the learning rate never "
                "reaches its peak",
                fix=f"use warmup_steps below {steps} (e.g. {steps // 10})",
                # unsafe: another learning-rate schedule
                edits=(Edit(("scheduler", "warmup_steps"), steps // 10),),
                unsafe=True,
            )
