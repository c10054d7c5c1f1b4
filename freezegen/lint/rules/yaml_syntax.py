"""The file is not valid YAML (reported at the offending character)."""

from freezegen.lint.rule import SchemaRule


class YamlSyntax(SchemaRule):
    code = "FG001"
    name = "yaml-syntax"
    summary = "The file is not valid YAML (reported at the offending character)."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
