"""An adapter or quantization combination the generated script cannot run (yet)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class AdapterNotRunnable(Rule):
    code = "FG122"
    name = "adapter-not-runnable"
    summary = (
        "An adapter or quantization combination freezegen's script cannot run: FSDP2 with "
        "a quantized base, bf16-pure, compile or a schedule beside quantized weights, torchao "
        "over GPT-2's Conv1D linears."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
adapter: {r: 8, targets: [attention]}
quantization: {weights: nf4}
batch: {micro_batch_size: 2, seq_len: 128}
distributed: {strategy: ddp}
""",
        """version: 1
model: {preset: llama-2-7b}
adapter: {r: 8, targets: [attention]}
quantization: {weights: int8, library: torchao}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: llama-2-7b}
adapter: {r: 8, targets: [attention]}
quantization: {weights: int8, library: torchao}
batch: {micro_batch_size: 2, seq_len: 128}
distributed: {strategy: ddp}
""",
        """version: 1
model: {preset: llama-2-7b}
adapter: {r: 8, targets: [attention, mlp]}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: fsdp}
""",
        # Quantized frozen blocks without an adapter: the blocks above train fully.
        """version: 1
model: {preset: gpt2}
freeze: {layers: {first: 10}}
quantization: {weights: int8}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: llama-2-7b}
adapter: {r: 8, targets: [attention]}
quantization: {weights: nf4}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: fsdp}
""",
        """version: 1
model: {preset: gpt2}
adapter: {r: 8, targets: [attention]}
quantization: {weights: nf4}
compile: true
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
adapter: {r: 8, targets: [attention]}
quantization: {weights: int8, library: torchao}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze: {layers: {first: 10}}
quantization: {weights: nf4}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: fsdp}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        if spec.adapter is None and spec.quantization is None:
            return
        if spec.adapter is None and spec.model.factory is not None:
            return  # quantizing a factory model is FG118's to say
        # the generator's own refusal, asked here so a spec fails at lint and not at generate
        from freezegen.generate.adapters import check_adapter_supported
        from freezegen.generate.errors import GenerateError

        try:
            check_adapter_supported(spec, ctx.architecture)
        except GenerateError as exc:
            yield self.at(ctx, exc.loc, str(exc))
