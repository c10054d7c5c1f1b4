"""A key given twice in one mapping; most YAML tools silently keep the last."""

from freezegen.lint.rule import SchemaRule


class DuplicateKey(SchemaRule):
    code = "FG003"
    name = "duplicate-key"
    summary = "A key given twice in one mapping; most YAML tools silently keep the last."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch:
  micro_batch_size: 2
  seq_len: 128
  micro_batch_size: 4
""",
    )
