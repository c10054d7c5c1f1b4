"""The file cannot be read as a spec: missing, binary, not UTF-8 or over 4 MiB."""

from freezegen.lint.rule import SchemaRule


class UnreadableFile(SchemaRule):
    code = "FG006"
    name = "unreadable-file"
    summary = "The file cannot be read as a spec: missing, binary, not UTF-8 or over 4 MiB."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
# a NUL byte makes this binary: \x00
""",
    )
