"""A model config (hf_config, or a pretrained model's cached config.json) that cannot be read or
holds an option its family cannot express or a head its family has no transformers class for
(an error), or whose model_type no family knows (a warning: transformers builds it, the trace
measures it, the generated script trains it)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class ModelConfigUnreadable(Rule):
    code = "FG111"
    name = "model-config-unreadable"
    summary = (
        "model.hf_config (or a pretrained model's cached config) is missing, not JSON, or of an "
        "unsupported model_type; or model.head names a head its family has no class for."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {hf_config: ./no-such-folder/config.json}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: granite-3.0-2b, head: sequence-classification}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        model = ctx.spec.model
        if ctx.architecture is None and ctx.head_unsupported:
            yield self.at(ctx, ("model", "head"), ctx.architecture_error)
            return
        key = "hf_config" if model.hf_config is not None else "pretrained"
        if getattr(model, key) is None:
            return
        if ctx.architecture is None and ctx.architecture_error and not ctx.model_not_cached:
            if ctx.unknown_architecture:
                # transformers may still build it: estimate and generate use the trace.
                memory = "use the traced estimate" if ctx.trace else "need the traced estimate"
                yield self.at(
                    ctx,
                    ("model", key),
                    f"{ctx.architecture_error}: freeze selections are not checked, and the "
                    f"memory rules {memory}",
                    severity=Severity.WARNING,
                    fix=None if ctx.trace else "run freezegen lint --trace to check memory",
                )
            else:
                yield self.at(ctx, ("model", key), ctx.architecture_error)
