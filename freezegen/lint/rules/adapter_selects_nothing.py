"""An adapter target, ``layers`` selector or ``train`` glob that selects nothing.

A target entry that matches no linear is a warning (usually a name from another family: GPT-2's
linears are c_attn/c_proj/c_fc, not q_proj); an adapter that adapts no linear at all is an
error, because peft refuses a LoRA config whose targets match no module.
"""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.lint.rules._names import example_names, linear_names


class AdapterSelectsNothing(Rule):
    code = "FG115"
    name = "adapter-selects-nothing"
    summary = "An adapter target, layers selector or train glob that selects nothing."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [c_attn, mlp], layers: {last: 4}, train: ["transformer.ln_f.*"]}
""",
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [q_proj, v_proj, mlp.down_proj]}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [q_proj, c_attn]}
""",
        """version: 1
model: {preset: llama-2-7b}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [c_attn]}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {layers: []}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {train: ["*.lm_head.*"]}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        plan = ctx.freeze_plan
        if plan is None or plan.adapter is None:
            return
        adapter = plan.adapter
        for miss in adapter.misses:
            if miss.loc[1] == "train":
                hint = f"parameter names look like {example_names(ctx)}"
            elif miss.loc[1] == "layers":
                hint = "remove it (every block), or select at least one block"
            else:
                hint = linear_names(ctx)
            yield self.at(ctx, miss.loc, miss.reason, fix=hint, severity=Severity.WARNING)
        if not adapter.linears:
            yield self.at(
                ctx,
                ("adapter", "targets"),
                "the adapter adapts no linear: peft refuses a LoRA config whose targets "
                "match no module",
                key=True,
                fix=linear_names(ctx),
            )
