"""keep_best, early_stop or a plateau entry in a spec without an ``eval`` section.

They act on validation losses, and without ``eval`` there are none: the best checkpoint would
never be kept, training never stop early, the plateau entry never thaw.
"""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.evaluation import validation_consumers


class ValidationWithoutEval(Rule):
    code = "FG124"
    name = "validation-without-eval"
    summary = "keep_best, early_stop or a plateau schedule entry without an eval section."
    valid = (
        """version: 1
model: {preset: gpt2}
freeze:
  layers: {first: 6}
  schedule:
    - {when: {plateau: {patience: 3}}, unfreeze: {layers: "4-5"}}
batch: {micro_batch_size: 2, seq_len: 128}
eval: {every_steps: 100}
train: {early_stop: {patience: 5}}
checkpoint: {keep_best: true}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
checkpoint: {keep_best: true}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
train: {early_stop: {patience: 5, min_delta: 0.01}}
""",
        """version: 1
model: {preset: gpt2}
freeze:
  layers: {first: 6}
  schedule:
    - {when: {plateau: {patience: 3}}, unfreeze: {layers: "4-5"}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        if ctx.spec.eval is not None:
            return
        for loc, key in validation_consumers(ctx.spec):
            yield self.at(
                ctx,
                loc,
                f"{key} acts on validation losses, and without an eval section there are none",
                fix="add eval: {every_steps: N}",
            )
