"""A required key is absent (reported at the mapping that lacks it)."""

from freezegen.lint.rule import SchemaRule


class MissingKey(SchemaRule):
    code = "FG005"
    name = "missing-key"
    summary = "A required key is absent (reported at the mapping that lacks it)."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2}
""",
    )
