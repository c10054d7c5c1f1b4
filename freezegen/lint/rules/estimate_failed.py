"""Memory could not be estimated (a factory that fails, or tracing unavailable)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class EstimateFailed(Rule):
    code = "FG204"
    name = "estimate-failed"
    summary = "The memory estimate failed, so the budget could not be checked."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: T4}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11", patterns: ["transformer.ln_f.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: T4}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        if ctx.spec.hardware is None or ctx.memory is not None or ctx.memory_error is None:
            return
        yield self.at(ctx, ("model",), f"memory not checked: {ctx.memory_error}", key=True)
