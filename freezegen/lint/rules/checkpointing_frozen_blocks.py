"""Activation checkpointing placed only on frozen bottom blocks, where it has no effect."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._blocks import grad_free_prefix


class CheckpointingFrozenBlocks(Rule):
    code = "FG105"
    name = "checkpointing-frozen-blocks"
    summary = (
        "Activation checkpointing covers only frozen bottom blocks, which save nothing anyway."
    )
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: {first: 6}}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: "6-11"}
""",
        """version: 1
model: {preset: gpt2}
freeze: {layers: {first: 6}}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: "0-5"}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: {first: 6}}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: "0-5"}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        prefix, arch, ac = grad_free_prefix(ctx), ctx.architecture, ctx.spec.checkpointing
        if prefix is None or arch is None or prefix == 0 or ac is None:
            return
        blocks = ac.indices(arch.num_layers)
        if blocks and all(b < prefix for b in blocks):
            # `activation_checkpointing: true` has no layers key; locate() falls back to it.
            yield self.at(
                ctx,
                ("activation_checkpointing", "layers"),
                f"activation checkpointing covers only blocks below "
                f"{prefix}, which are frozen with frozen inputs: they save no "
                "activations, so checkpointing them saves nothing",
                fix=f'checkpoint the trainable blocks instead: layers: "{prefix}-'
                f'{arch.num_layers - 1}"'
                if prefix < arch.num_layers
                else None,
            )
