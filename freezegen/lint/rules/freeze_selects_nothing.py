"""A freeze selector that selects no parameter: usually a typo in a glob or an empty range."""

from collections.abc import Iterator

from freezegen.arch.freeze import select
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._names import example_names


class FreezeSelectsNothing(Rule):
    code = "FG102"
    name = "freeze-selects-nothing"
    summary = "A freeze/except/unfreeze pattern or block selector that matches no parameter."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {patterns: ["*.ln_f.*"], except: ["*.bias"], layers: {first: 2}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {patterns: ["*.layernorm_f.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: llama-2-7b}
freeze: {layers: {first: 4}, except: ["*.bias"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze: {layers: {first: 0}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan, arch = ctx.freeze_plan, ctx.architecture
        if plan is None or arch is None or ctx.params is None:
            return
        freeze = ctx.spec.freeze
        misses = list(plan.misses)
        for i, step in enumerate(freeze.schedule):
            sel = select(
                step.unfreeze, ctx.params, arch.num_layers, ("freeze", "schedule", i, "unfreeze")
            )
            misses.extend(sel.misses)
        hint = f"parameter names look like {example_names(ctx)}"
        for miss in misses:
            yield self.at(ctx, miss.loc, miss.reason, fix=hint)
        if freeze.layers is not None and _selects_no_block(freeze.layers):
            yield self.at(
                ctx,
                ("freeze", "layers"),
                "layers selects no block",
                fix="remove it, or select at least one block",
            )


def _selects_no_block(selector: object) -> bool:
    return (
        getattr(selector, "first", None) == 0
        or getattr(selector, "last", None) == 0
        or selector == []
    )
