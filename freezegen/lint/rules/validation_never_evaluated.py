"""Validation data that no evaluation reads."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class ValidationNeverEvaluated(Rule):
    code = "FG133"
    name = "validation-never-evaluated"
    summary = (
        "data.validation without an eval section: nothing evaluates on it, and a split holds "
        "its records out of training all the same."
    )
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, validation: {split: 0.05}}
eval: {every_steps: 100}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, validation: {split: 0.05}}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        validation = spec.data.validation
        if validation is None or spec.eval is not None:
            return
        if validation.split is not None:
            message = (
                f"data.validation holds {validation.split:g} of the records out of training, "
                "and no eval section evaluates on them"
            )
        else:
            message = "data.validation names a file, and no eval section evaluates on it"
        yield self.at(
            ctx,
            ("data", "validation"),
            message,
            fix="add eval: {every_steps: N}, or remove data.validation",
            key=True,
        )
