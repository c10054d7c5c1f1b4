"""One term dominates the peak and a knob would shrink it a lot (opt-in: select FG203)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._budget import gib
from freezegen.memory.fixes import knob_effects

DOMINANT = 0.5
WORTH = 0.25


class DominantTerm(Rule):
    code = "FG203"
    name = "dominant-term"
    summary = "One memory term is over half the peak and a knob would cut the peak by a quarter."
    severity = Severity.WARNING
    default_enabled = False
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 1, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2-medium, attention: eager}
batch: {micro_batch_size: 16, seq_len: 512}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        est = ctx.memory
        if est is None or not est.peak_bytes:
            return
        term, size = max(vars(est.breakdown).items(), key=lambda kv: kv[1])
        if size < DOMINANT * est.peak_bytes:
            return
        effects = [
            f
            for f in knob_effects(ctx.spec)
            if f.estimate.peak_bytes <= (1 - WORTH) * est.peak_bytes
        ]
        if not effects:
            return
        best = min(effects, key=lambda f: f.estimate.peak_bytes)
        share = 100 * size / est.peak_bytes
        yield self.at(
            ctx,
            (),
            f"{term.replace('_', ' ')} are {share:.0f}% of the predicted peak "
            f"({gib(size)} of {gib(est.peak_bytes)})",
            fix=f"{best.change}: peak {gib(est.peak_bytes)} -> {gib(best.estimate.peak_bytes)}",
        )
