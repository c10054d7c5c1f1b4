"""An ``eval`` section whose data source has no validation examples to evaluate on."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.evaluation import missing_validation_data


class EvalWithoutValidationData(Rule):
    code = "FG125"
    name = "eval-without-validation-data"
    summary = "An eval section, and a data source that holds out no validation examples."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: synthetic}
eval: {every_steps: 100, max_batches: 10}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: factory, factory: "my_project.data:build"}
eval: {every_steps: 100}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        problem = missing_validation_data(ctx.spec)
        if problem is not None:
            yield self.at(
                ctx,
                ("eval",),
                problem,
                fix="give data.validation ({path: ...} or {split: 0.05}) for file data, evaluate "
                "on synthetic data, or remove the eval section",
                key=True,
            )
