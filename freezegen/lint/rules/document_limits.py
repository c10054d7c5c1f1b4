"""The document nests too deeply or its aliases expand too far (a YAML bomb)."""

from freezegen.lint.rule import SchemaRule


class DocumentLimits(SchemaRule):
    code = "FG007"
    name = "document-limits"
    summary = "The document nests too deeply or its aliases expand too far (a YAML bomb)."
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
""",
    )
