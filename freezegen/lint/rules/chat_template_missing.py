"""format: chat with a local tokenizer that has no chat template (or no fast tokenizer)."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class ChatTemplateMissing(Rule):
    code = "FG131"
    name = "chat-template-missing"
    summary = (
        "data.format chat with a tokenizer folder that has no chat template, or no "
        "tokenizer.json to map the rendered turns to tokens."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: /, format: completion}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: jsonl, path: t.jsonl, tokenizer: /, format: chat}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        data = ctx.spec.data
        if data.format != "chat" or data.tokenizer is None:
            return
        from freezegen.generate.data import chat_template_problem

        problem = chat_template_problem(data.tokenizer)
        if problem is not None:
            yield self.at(
                ctx,
                ("data", "tokenizer"),
                problem,
                fix="save the tokenizer with its chat_template, or use format: completion",
            )
