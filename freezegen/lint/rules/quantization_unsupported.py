"""A quantization the model source or the distributed strategy cannot run.

- A ``factory`` model is built by the user's code, not loaded by transformers, so the
  quantized loading the generated script uses (``from_pretrained`` with a
  ``BitsAndBytesConfig``) cannot apply to it.
- ``int8`` (bitsandbytes' LLM.int8, ``Int8Params``) with ``distributed.strategy: fsdp``: FSDP
  shards a parameter by splitting it, and an ``Int8Params`` split loses the row scales its
  matmul needs (bitsandbytes 0.50 keeps its metadata through torch.chunk/split only for 4-bit
  ``Params4bit``; FSDP-QLoRA is 4-bit only: bitsandbytes' docs "FSDP-QLoRA",
  huggingface/peft#2833, bitsandbytes-foundation/bitsandbytes#1709).

4-bit weights (and torchao's) could in principle shard under FSDP with a floating
``bnb_4bit_quant_storage`` (bitsandbytes' FSDP-QLoRA guide; huggingface/accelerate#3983), but the
generated script does not do it: any quantized base under FSDP2 is FG122's refusal (the
generator's), so that fix says ddp or no quantization. bf16 ``compute`` on a GPU without bf16 is
FG101's.
"""

from collections.abc import Iterator

from freezegen.arch.training import quantizes
from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class QuantizationUnsupported(Rule):
    code = "FG118"
    name = "quantization-unsupported"
    summary = "A quantization the model source or the distributed strategy cannot run."
    valid = (
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention, mlp]}
quantization: {weights: nf4}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: fsdp}
""",
    )
    invalid = (
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention, mlp]}
quantization: {weights: int8}
hardware: {gpu: A100-80GB, gpus_per_node: 2}
distributed: {strategy: fsdp}
""",
        """version: 1
model: {factory: "mypkg.models:build"}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention]}
quantization: {weights: nf4}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        if not quantizes(spec) or spec.quantization is None:
            return
        weights = spec.quantization.weights
        loc = ("quantization", "weights")
        if spec.model.factory is not None:
            yield self.at(
                ctx,
                loc,
                f"{weights} storage is applied when transformers loads the model "
                "(BitsAndBytesConfig), and a factory model is built by your own code",
                fix="describe the model by preset, hf_config or pretrained, or drop the "
                "quantization section",
            )
        library = spec.quantization.library
        if weights == "int8" and library == "bitsandbytes" and spec.distributed.strategy == "fsdp":
            yield self.at(
                ctx,
                loc,
                "int8 weights (bitsandbytes LLM.int8) cannot be sharded by FSDP: a split "
                "Int8Params loses the scales its matmul needs",
                fix="use distributed.strategy: ddp, or quantization.weights: none (LoRA over a "
                "full-precision base shards under FSDP2)",
            )
