"""bf16 on a GPU without bf16 support (pre-Ampere cards such as V100 and T4): as the training
precision, or as the dtype quantized weights are dequantized to for their matmuls
(``quantization.compute``)."""

from collections.abc import Iterator

from freezegen.arch.training import quantizes
from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class Bf16Unsupported(Rule):
    code = "FG101"
    name = "bf16-unsupported"
    summary = "bf16 precision or quantization compute on a GPU that has no bf16 (V100, T4)."
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
        """version: 1
model: {preset: gpt2}
precision: fp16
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: T4}
adapter: {targets: [attention]}
quantization: {weights: nf4, compute: bf16}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec, hw = ctx.spec, ctx.spec.hardware
        uses: list[tuple[tuple[str, ...], str, str]] = []
        if spec.precision.startswith("bf16"):
            uses.append(
                (
                    ("precision",),
                    f"precision {spec.precision}",
                    "use precision: fp16 (with GradScaler) or fp32",
                )
            )
        if (
            quantizes(spec)
            and spec.quantization is not None
            and spec.quantization.compute == "bf16"
        ):
            uses.append(
                (
                    ("quantization", "compute"),
                    "quantization compute bf16",
                    "use compute: fp16 or fp32",
                )
            )
        if not uses or hw is None:
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
        if supported:
            return
        for loc, use, fix in uses:
            yield self.at(ctx, loc, f"{use} needs bf16 support, which {what} lacks", fix=fix)
