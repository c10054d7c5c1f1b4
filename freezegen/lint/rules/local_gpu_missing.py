"""``hardware: {gpu: auto}`` on a machine with no GPU: there is nothing to budget for here."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.local_gpu import AUTO, ENV, local_gpu


class LocalGpuMissing(Rule):
    code = "FG121"
    name = "local-gpu-missing"
    summary = "hardware.gpu: auto, and this machine has no GPU: memory is not checked here."
    severity = Severity.WARNING
    # The examples run with FREEZEGEN_LOCAL_GPU=none (tests/conftest.py): no GPU, whatever
    # machine runs them.
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: T4}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
hardware: {gpu: auto}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        if ctx.document.get(("hardware", "gpu")) != AUTO or local_gpu() is not None:
            return
        yield self.at(
            ctx,
            ("hardware", "gpu"),
            "gpu: auto budgets for the GPU of the machine that runs freezegen, and this one has "
            "none (nvidia-smi found none): memory is not checked here",
            fix=f"name the card the run will use (e.g. gpu: A100-80GB), run lint where it is, "
            f"or set {ENV}=NAME,MEMORY_MIB,MAJOR.MINOR",
        )
