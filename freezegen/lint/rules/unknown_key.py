"""A key the spec format does not define (with the closest known key)."""

from freezegen.lint.rule import SchemaRule


class UnknownKey(SchemaRule):
    code = "FG002"
    name = "unknown-key"
    summary = "A key the spec format does not define (with the closest known key)."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batchsize: 2, seq_len: 128}
""",
    )
