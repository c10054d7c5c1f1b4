"""Sequences longer than the model's position table (learned) or trained context (rotary)."""

from collections.abc import Iterator

from freezegen.arch.families import family_of
from freezegen.arch.family import Positions
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class SeqLenExceedsPositions(Rule):
    code = "FG110"
    name = "seq-len-exceeds-positions"
    summary = "batch.seq_len beyond the model's maximum positions."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 1024}
""",
    )
    invalid = (
        """version: 1
model: {preset: bert-base-uncased}
batch: {micro_batch_size: 2, seq_len: 1024}
""",
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 1, seq_len: 8192}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        arch = ctx.architecture
        seq_len = ctx.spec.batch.seq_len
        if arch is None or seq_len <= arch.max_positions:
            return
        if family_of(arch).positions is Positions.LEARNED:
            yield self.at(
                ctx,
                ("batch", "seq_len"),
                f"seq_len {seq_len} exceeds the {arch.max_positions} learned position "
                "embeddings of this model: the forward pass would fail with an index error",
                fix=f"use seq_len: {arch.max_positions} or less",
            )
        else:
            yield self.at(
                ctx,
                ("batch", "seq_len"),
                f"seq_len {seq_len} is beyond the {arch.max_positions} positions this "
                "model was trained on; quality degrades without rope scaling",
                severity=Severity.WARNING,
                fix=f"use seq_len: {arch.max_positions} or less",
            )
