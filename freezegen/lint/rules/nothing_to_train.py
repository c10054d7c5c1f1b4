"""Nothing trains at step 0: the optimizer would have nothing to update.

What trains is freezegen/arch/training.py's plan: without an adapter what the freeze section
leaves; with one, the adapters and what adapter.train names. A quantized frozen base with
nothing else to train needs an adapter.
"""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class NothingToTrain(Rule):
    code = "FG104"
    name = "nothing-to-train"
    summary = "Every parameter frozen and no adapter that trains, so nothing would train."
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11"}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11", patterns: ["transformer.ln_f.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze: {patterns: ["*"]}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze: {embeddings: true, layers: "0-11", patterns: ["transformer.ln_f.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
quantization: {weights: nf4}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [q_proj]}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan = ctx.freeze_plan
        if plan is None or plan.trainable:
            return
        if any(step.at_step == 0 for step in ctx.spec.freeze.schedule):
            return
        frozen = f"all {len(plan.params)} parameter tensors are frozen"
        if plan.adapter is not None:
            yield self.at(
                ctx,
                ("adapter",),
                f"{frozen}, the adapter adapts no linear and adapter.train names no "
                "parameter: there is nothing to train",
                key=True,
                fix="give the adapter targets this model has (FG115 says which), or name base "
                "parameters in adapter.train",
            )
        elif plan.quantized:
            yield self.at(
                ctx,
                ("quantization",),
                f"{frozen} and the base is stored quantized, which cannot train: there is "
                "nothing to train",
                key=True,
                fix="add an adapter (e.g. adapter: {targets: [attention, mlp]}) to train "
                "low-rank adapters beside the quantized base",
            )
        else:
            yield self.at(
                ctx,
                ("freeze",),
                f"{frozen}: there is nothing to train",
                key=True,
                fix="unfreeze something (e.g. the head or the top block), or add except: [...]",
            )
