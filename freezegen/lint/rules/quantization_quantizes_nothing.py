"""A quantization section with no frozen block linear to store quantized.

Quantization applies to the frozen base only (freezegen/arch/training.py): when every block
linear trains at step 0 (no adapter, nothing frozen), nothing is stored in 4 or 8 bits.
"""

from collections.abc import Iterator

from freezegen.arch.training import quantizes
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class QuantizationQuantizesNothing(Rule):
    code = "FG120"
    name = "quantization-quantizes-nothing"
    summary = "A quantization section while no block linear is frozen, so nothing is quantized."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
freeze: {layers: {first: 6}}
quantization: {weights: int8}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
quantization: {weights: nf4}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan, spec = ctx.freeze_plan, ctx.spec
        if plan is None or plan.quantized or not quantizes(spec) or spec.quantization is None:
            return
        yield self.at(
            ctx,
            ("quantization", "weights"),
            f"no block linear is frozen, so nothing is stored in {spec.quantization.weights}: "
            "quantization applies to the frozen base only",
            fix="add an adapter (which freezes the base), freeze blocks (freeze.layers), or "
            "remove the quantization section",
        )
