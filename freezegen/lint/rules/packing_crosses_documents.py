"""Packing into a model whose attention does not keep the packed documents apart."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class PackingCrossesDocuments(Rule):
    code = "FG132"
    name = "packing-crosses-documents"
    summary = (
        "data.packing where the documents packed in a row attend to each other: a factory "
        "model (called with input_ids alone), BERT, or an architecture freezegen does not know."
    )
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, packing: true}
""",
    )
    invalid = (
        """version: 1
model: {preset: bert-base-uncased}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, packing: true}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        if not spec.data.packing:
            return
        from freezegen.arch.families import family_of
        from freezegen.generate.data import packing_caveat

        arch = None if spec.model.factory is not None else ctx.architecture
        caveat = packing_caveat(spec, None if arch is None else family_of(arch))
        if caveat is not None:
            yield self.at(
                ctx,
                ("data", "packing"),
                caveat + " (their first tokens are never targets)",
                fix="packing: false pads each example to seq_len instead",
            )
