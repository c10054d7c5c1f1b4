"""A freeze.schedule step that thaws weights the quantization section stores quantized.

Quantization stores the block linears frozen at step 0 in 4 or 8 bits (freezegen/arch/training.py)
and is decided when the model loads: such a weight cannot train later, so a schedule step that
thaws one fails at that step. ``adapter.train`` never names a quantized weight: what it names
trains from step 0 and is kept unquantized.
"""

from collections.abc import Iterator

from freezegen.arch.freeze import select
from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class QuantizedWeightsThawed(Rule):
    code = "FG117"
    name = "quantized-weights-thawed"
    summary = "An unfreeze step that thaws weights stored quantized, which cannot train."
    valid = (
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention]}
quantization: {weights: nf4}
freeze:
  schedule:
    - {at_step: 100, unfreeze: {layers: {last: 2}, modules: [norm]}}
""",
    )
    invalid = (
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention]}
quantization: {weights: nf4}
freeze:
  schedule:
    - {at_step: 100, unfreeze: {layers: {last: 2}}}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
quantization: {weights: int8}
freeze:
  layers: {first: 6}
  schedule:
    - {at_step: 100, unfreeze: {patterns: ["*.h.5.mlp.*"]}}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan, arch, spec = ctx.freeze_plan, ctx.architecture, ctx.spec
        if plan is None or arch is None or not plan.quantized or spec.quantization is None:
            return
        weights = spec.quantization.weights
        for i, step in enumerate(spec.freeze.schedule):
            loc = ("freeze", "schedule", i, "unfreeze")
            thawed = sorted(select(step.unfreeze, plan.params, arch.num_layers, loc).names)
            hit = [name for name in thawed if name in plan.quantized]
            if not hit:
                continue
            more = f" and {len(hit) - 1} more" if len(hit) > 1 else ""
            keep = (
                "name them in adapter.train so they train from the start, unquantized"
                if spec.adapter is not None
                else "leave them unfrozen in the freeze section so they are never quantized"
            )
            yield self.at(
                ctx,
                loc,
                f"this step thaws {len(hit)} weight{'s' * (len(hit) > 1)} stored in {weights} "
                f"({hit[0]}{more}): a quantized weight cannot train",
                fix=f"thaw only what is not quantized (e.g. modules: [norm]), {keep}, or "
                "drop the quantization section",
            )
