"""A model config (hf_config, or a pretrained model's cached config.json) that cannot be read or
describes an architecture freezegen cannot model, or a head the model's family has no
transformers class for."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
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
            yield self.at(ctx, ("model", key), ctx.architecture_error)
