"""An adapter rank at or above the smaller dimension of a linear it adapts.

A rank-r adapter of a linear with in and out features holds r * (in + out) parameters; at
r >= min(in, out) that is more than the in * out of the weight itself, and the update it can
express is no longer low-rank: training that weight would cost less.
"""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class AdapterRankTooHigh(Rule):
    code = "FG116"
    name = "adapter-rank-too-high"
    summary = "adapter.r at or above the smaller dimension of a linear it adapts."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {r: 64, targets: all-linear}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {r: 768, targets: [attention]}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan, spec = ctx.freeze_plan, ctx.spec
        if plan is None or plan.adapter is None or spec.adapter is None:
            return
        r = spec.adapter.r
        too_small = {
            lin.local_name: lin
            for lin in plan.adapter.linears
            if r >= min(lin.in_features, lin.out_features)
        }
        if not too_small:
            return
        lin = min(too_small.values(), key=lambda x: min(x.in_features, x.out_features))
        others = len(too_small) - 1
        also = f", and {others} other linear{'s' * (others > 1)}" if others else ""
        yield self.at(
            ctx,
            ("adapter", "r"),
            f"r={r} is at or above the smaller dimension of {lin.local_name} "
            f"({lin.in_features} in, {lin.out_features} out){also}: its adapter holds "
            f"{r * (lin.in_features + lin.out_features):,} parameters, more than the "
            f"{lin.in_features * lin.out_features:,} of the weight it adapts",
            fix=f"use r below {min(lin.in_features, lin.out_features)}, or train that "
            "linear fully (adapter.train) instead",
        )
