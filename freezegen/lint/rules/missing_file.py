"""A local file the run needs (weights, data, validation data, tokenizer, a resume checkpoint,
a pretrained model's cached config) does not exist."""

from collections.abc import Iterator
from pathlib import Path

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class MissingFile(Rule):
    code = "FG112"
    name = "missing-file"
    summary = (
        "model.weights, data.path, data.tokenizer, data.validation.path or checkpoint.resume "
        "names a missing path, or "
        "model.pretrained is not in the local Hugging Face cache."
    )
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
checkpoint: {resume: auto}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2, weights: ./no-such-weights.safetensors}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
data: {source: text, path: ./no-such-corpus.txt, tokenizer: ./no-such-tokenizer}
""",
        """version: 1
model: {pretrained: freezegen-examples/not-in-any-cache}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        if spec.model.pretrained is not None and ctx.architecture is None and ctx.model_not_cached:
            yield self.at(ctx, ("model", "pretrained"), ctx.architecture_error or "")
        paths: list[tuple[tuple[str, ...], Path | None, str]] = [
            (("model", "weights"), spec.model.weights, "weights"),
            (("data", "path"), spec.data.path, "data file"),
            (("data", "tokenizer"), spec.data.tokenizer, "tokenizer"),
        ]
        if spec.data.validation is not None:
            path = spec.data.validation.path
            paths.append((("data", "validation", "path"), path, "validation data"))
        if spec.checkpoint.resume not in ("auto", "never"):
            resume = Path(spec.checkpoint.resume)
            paths.append((("checkpoint", "resume"), resume, "checkpoint to resume from"))
        for loc, path, what in paths:
            if path is None:
                continue
            try:
                found = path.exists()
            except OSError as exc:  # e.g. a name too long for the file system
                yield self.at(ctx, loc, f"{what} cannot be checked: {exc.strerror or exc}")
                continue
            if not found:
                yield self.at(ctx, loc, f"{what} not found: {path}")
