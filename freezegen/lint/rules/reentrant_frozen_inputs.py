"""Reentrant checkpointing of a block whose inputs do not require grad drops its gradients."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._blocks import grad_free_prefix


class ReentrantFrozenInputs(Rule):
    code = "FG106"
    name = "reentrant-frozen-inputs"
    summary = (
        "Reentrant checkpointing behind frozen inputs: the block's parameters get no gradient."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: {first: 6}}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: all, reentrant: false}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: {first: 6}}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: all, reentrant: true}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        ac, arch, prefix = ctx.spec.checkpointing, ctx.architecture, grad_free_prefix(ctx)
        if ac is None or not ac.reentrant or arch is None or prefix is None:
            return
        if prefix >= arch.num_layers or prefix not in ac.indices(arch.num_layers):
            return
        yield self.at(
            ctx,
            ("activation_checkpointing", "reentrant"),
            f"block {prefix} is the first trainable block and its inputs do not require "
            "grad (everything below is frozen); reentrant checkpointing returns an output "
            "without grad, so its parameters (and checkpointed blocks above) get no "
            "gradient",
            fix="set reentrant: false (torch's recommended default)",
        )
