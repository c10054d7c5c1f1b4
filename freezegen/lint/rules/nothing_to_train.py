"""Every parameter frozen at step 0: the optimizer would have nothing to update."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class NothingToTrain(Rule):
    code = "FG104"
    name = "nothing-to-train"
    summary = "The freeze section freezes every parameter, so nothing would train."
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11"}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11", patterns: ["transformer.ln_f.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze: {patterns: ["*"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan = ctx.freeze_plan
        if plan is None or plan.trainable:
            return
        if any(step.at_step == 0 for step in ctx.spec.freeze.schedule):
            return
        yield self.at(
            ctx,
            ("freeze",),
            f"all {len(plan.params)} parameter tensors are frozen: there is nothing to train",
            key=True,
            fix="unfreeze something (e.g. the head or the top block), or add except: [...]",
        )
