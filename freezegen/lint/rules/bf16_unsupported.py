"""bf16 precision on a GPU without bf16 support (pre-Ampere cards such as V100 and T4)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class Bf16Unsupported(Rule):
    code = "FG101"
    name = "bf16-unsupported"
    summary = "bf16 precision on a GPU that has no bf16 support (V100, T4)."
    valid = (
        """version: 1
model: {preset: gpt2}
precision: bf16
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB}
""",
        """version: 1
model: {preset: gpt2}
precision: fp16
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: T4}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
precision: bf16
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: V100-32GB}
""",
        """version: 1
model: {preset: gpt2}
precision: bf16-pure
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {memory_gib: 24, bf16: false}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec, hw = ctx.spec, ctx.spec.hardware
        if not spec.precision.startswith("bf16") or hw is None:
            return
        if ctx.gpu is not None:
            supported, what = (
                ctx.gpu.bf16,
                f"{ctx.gpu.name} (compute capability "
                f"{ctx.gpu.compute_capability[0]}.{ctx.gpu.compute_capability[1]})",
            )
        elif hw.bf16 is not None:
            supported, what = hw.bf16, "this GPU (hardware.bf16: false)"
        else:
            return
        if not supported:
            yield self.at(
                ctx,
                ("precision",),
                f"precision {spec.precision} needs bf16 support, which {what} lacks",
                fix="use precision: fp16 (with GradScaler) or fp32",
            )
