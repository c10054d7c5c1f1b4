"""num_labels on a causal-lm head, where it does nothing."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class LabelsWithoutClassifier(Rule):
    code = "FG113"
    name = "labels-without-classifier"
    summary = "model.num_labels is set but the head is causal-lm."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: bert-base-uncased, head: sequence-classification, num_labels: 3}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2, num_labels: 3}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        model = ctx.spec.model
        if model.num_labels is not None and model.head == "causal-lm":
            yield self.at(
                ctx,
                ("model", "num_labels"),
                "num_labels has no effect with head causal-lm",
                fix="set head: sequence-classification, or remove num_labels",
            )
