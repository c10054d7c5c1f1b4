"""An explicit global batch that micro-batch x accumulation x world size does not produce."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.edit import Edit


class GlobalBatchMismatch(Rule):
    code = "FG109"
    name = "global-batch-mismatch"
    summary = (
        "batch.global_batch_size differs from micro_batch_size x grad_accum_steps x world size."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 4, grad_accum_steps: 8, seq_len: 128, global_batch_size: 64}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: ddp}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 4, grad_accum_steps: 8, seq_len: 128, global_batch_size: 64}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        batch = ctx.spec.batch
        if batch.global_batch_size is None:
            return
        if ctx.spec.distributed.strategy != "none" and ctx.spec.hardware is None:
            return  # world size unknown: torchrun decides it
        world = ctx.world_size
        effective = batch.micro_batch_size * batch.grad_accum_steps * world
        if effective == batch.global_batch_size:
            return
        per_step = batch.micro_batch_size * world
        fix, edits = None, ()
        if batch.global_batch_size % per_step == 0:
            steps = batch.global_batch_size // per_step
            fix = f"set grad_accum_steps: {steps}"
            edits = (Edit(("batch", "grad_accum_steps"), steps),)
        # unsafe: the run then updates with the declared batch, not the one it had
        yield self.at(
            ctx,
            ("batch", "global_batch_size"),
            f"global_batch_size {batch.global_batch_size} does not match micro_batch_size "
            f"{batch.micro_batch_size} x grad_accum_steps {batch.grad_accum_steps} x "
            f"world size {world} = {effective}",
            fix=fix,
            edits=edits,
            unsafe=True,
        )
