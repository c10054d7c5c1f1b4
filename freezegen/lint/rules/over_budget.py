"""The predicted peak plus overhead does not fit the GPU: the run would die of OOM."""

from collections.abc import Iterator

from freezegen.arch.training import quantizes
from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._budget import budget_loc, budget_name, gib, peak_when
from freezegen.memory.fixes import cheapest_fit
from freezegen.spec.edit import Edit, edits_between


class OverBudget(Rule):
    code = "FG201"
    name = "over-budget"
    summary = "The predicted peak memory plus overhead exceeds the GPU's memory."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 4, seq_len: 512}
hardware: {gpu: A100-80GB}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2-medium, attention: eager}
batch: {micro_batch_size: 16, seq_len: 512}
hardware: {gpu: A100-40GB}
""",
        """version: 1
model: {preset: llama-2-7b}
precision: bf16
batch: {micro_batch_size: 1, seq_len: 512}
hardware: {gpu: A100-80GB}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        if ctx.spec.hardware is None:
            return  # no budget to check against: skip the estimate
        est = ctx.memory
        if est is None or est.fits is not False:
            return
        over = est.required_bytes - est.budget_bytes
        message = (
            f"predicted peak {gib(est.peak_bytes)}{peak_when(ctx)} + {gib(est.overhead_bytes)} "
            "overhead "
            f"exceeds {budget_name(ctx)} ({gib(est.budget_bytes)}) by {gib(over)}"
        )
        fix = cheapest_fit(ctx.spec)
        edits: tuple[Edit, ...] = ()
        if fix is None:
            # FSDP2 cannot shard a quantized base (FG122): sharding needs a full-precision one.
            base = " over a full-precision base" if quantizes(ctx.spec) else ""
            hint = (
                "nothing freezegen tries makes it fit on one device: use more GPUs with "
                f"distributed.strategy: fsdp{base}, or a bigger GPU"
            )
        else:
            after = fix.estimate
            hint = (
                f"{fix.change}: peak {gib(est.peak_bytes)} -> {gib(after.peak_bytes)}, fits "
                f"with {gib(after.headroom_bytes or 0)} spare"
            )
            edits = edits_between(ctx.spec, fix.spec)
        yield self.at(
            ctx,
            budget_loc(ctx),
            message,
            fix=hint,
            edits=edits,
            unsafe=bool(fix and fix.changes_maths),
        )
