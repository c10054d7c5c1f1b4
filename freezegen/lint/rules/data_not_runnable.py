"""Data settings the generated script cannot run."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class DataNotRunnable(Rule):
    code = "FG130"
    name = "data-not-runnable"
    summary = (
        "Data settings the generated script cannot run: a format or packing with a classifier, "
        "fields, a split or streaming asked of one text file, file settings beside synthetic "
        "or factory data."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, format: completion, packing: true}
""",
    )
    invalid = (
        """version: 1
model: {preset: bert-base-uncased, head: sequence-classification}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: tok, packing: true}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: text, path: t.txt, tokenizer: tok, validation: {split: 0.1}}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: synthetic, packing: true}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        # the generator's own refusal, asked here so a spec fails at lint and not at generate
        from freezegen.generate.data import check_data_supported
        from freezegen.generate.errors import GenerateError

        try:
            check_data_supported(ctx.spec)
        except GenerateError as exc:
            yield self.at(ctx, exc.loc, str(exc))
