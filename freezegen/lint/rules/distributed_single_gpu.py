"""ddp or fsdp with one GPU in total: all the wrapping cost, none of the scale."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class DistributedSingleGpu(Rule):
    code = "FG108"
    name = "distributed-single-gpu"
    summary = "distributed.strategy ddp/fsdp while hardware has one GPU in total."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB, gpus_per_node: 8}
distributed: {strategy: fsdp}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB}
distributed: {strategy: ddp}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        strategy, hw = ctx.spec.distributed.strategy, ctx.spec.hardware
        if strategy == "none" or hw is None or hw.world_size > 1:
            return
        what = "replicates the model over" if strategy == "ddp" else "shards the model over"
        yield self.at(
            ctx,
            ("distributed", "strategy"),
            f"strategy {strategy} {what} one GPU in total (hardware: gpus_per_node "
            f"{hw.gpus_per_node} x nodes {hw.nodes}): it adds communication and wrapping "
            "cost and saves no memory",
            fix="use strategy: none, or set hardware.gpus_per_node / nodes",
        )
