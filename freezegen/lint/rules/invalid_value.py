"""A value of the wrong type, out of range, or not one of the allowed choices."""

from freezegen.lint.rule import SchemaRule


class InvalidValue(SchemaRule):
    code = "FG004"
    name = "invalid-value"
    summary = "A value of the wrong type, out of range, or not one of the allowed choices."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
precision: bf61
batch: {micro_batch_size: 0, seq_len: 128}
""",
    )
