"""The run fits, but with less than 10% of the GPU to spare: fragmentation may still OOM it."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._budget import budget_loc, budget_name, gib, peak_when
from freezegen.memory.fixes import COMFORT as MARGIN
from freezegen.memory.fixes import knob_effects


class NearBudget(Rule):
    code = "FG202"
    name = "near-budget"
    summary = "The predicted peak fits, but within 10% of the GPU's memory."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 4, seq_len: 512}
hardware: {gpu: A100-80GB}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 8, seq_len: 1024}
hardware: {memory_gib: 16.4}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        if ctx.spec.hardware is None:
            return  # no budget to check against: skip the estimate
        est = ctx.memory
        if est is None or not est.fits:
            return
        headroom = est.headroom_bytes or 0
        if headroom >= MARGIN * est.budget_bytes:
            return
        better = [f for f in knob_effects(ctx.spec) if f.estimate.peak_bytes < est.peak_bytes]
        hint = None
        if better:
            best = min(better, key=lambda f: f.estimate.peak_bytes)
            hint = f"{best.change} would bring the peak to {gib(best.estimate.peak_bytes)}"
        yield self.at(
            ctx,
            budget_loc(ctx),
            f"predicted peak {gib(est.peak_bytes)}{peak_when(ctx)} + {gib(est.overhead_bytes)} "
            "overhead "
            f"leaves only {gib(headroom)} of {budget_name(ctx)} "
            f"({100 * headroom / est.budget_bytes:.0f}%, under {MARGIN:.0%})",
            fix=hint,
        )
