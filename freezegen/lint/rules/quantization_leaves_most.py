"""A quantization section that stores only a small share of the model's weights quantized.

Only linears are quantized (freezegen/arch/training.py). A mixture-of-experts model in
transformers 5 keeps its experts as fused 3-D weights, which are no linears: a "4-bit"
Mixtral-8x7B holds about 97% of its weights in 16 or 32 bits. The estimate counts that; this
rule says it where the choice is made.
"""

from collections.abc import Iterator

from freezegen.arch.training import quantizes
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule

SHARE = 0.5
"""Below this share of the model's weights quantized, the section is not doing what it says."""


class QuantizationLeavesMost(Rule):
    code = "FG123"
    name = "quantization-leaves-most"
    summary = "Quantization stores less than half of the model's weights quantized."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 1, seq_len: 512}
adapter: {r: 16, targets: all-linear}
quantization: {weights: nf4}
""",
    )
    invalid = (
        """version: 1
model: {preset: mixtral-8x7b}
batch: {micro_batch_size: 1, seq_len: 512}
adapter: {r: 16, targets: [attention]}
quantization: {weights: nf4}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan, params, spec = ctx.freeze_plan, ctx.params, ctx.spec
        if plan is None or params is None or not plan.quantized or not quantizes(spec):
            return
        total = sum(p.numel for p in params)
        stored = sum(p.numel for p in params if p.name in plan.quantized)
        if not total or stored >= SHARE * total:
            return
        kept = [p for p in params if p.name not in plan.quantized]
        biggest = max(kept, key=lambda p: p.numel)
        yield self.at(
            ctx,
            ("quantization", "weights"),
            f"{spec.quantization.weights} stores {stored / total:.0%} of this model's weights: "  # type: ignore[union-attr]
            "only frozen block linears are quantized, and the rest stays in full precision "
            f"(the largest: {biggest.name}, {biggest.numel:,} weights, shape "
            f"{'x'.join(map(str, biggest.shape))})",
            fix="expect the memory the estimate shows (freezegen estimate --explain), not a "
            "4- or 8-bit model",
        )
