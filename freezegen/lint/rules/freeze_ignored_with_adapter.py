"""A static freeze key beside an adapter, where it has no effect.

With an adapter the whole base is frozen except what ``adapter.train`` names
(freezegen/arch/training.py), so ``freeze.embeddings``, ``layers``, ``modules``, ``patterns``
and ``except`` change nothing; ``freeze.schedule`` still thaws base parameters later.
"""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule


class FreezeIgnoredWithAdapter(Rule):
    code = "FG119"
    name = "freeze-ignored-with-adapter"
    summary = "A static freeze key beside an adapter, which freezes the whole base anyway."
    severity = Severity.WARNING
    valid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention], train: ["transformer.ln_f.*"]}
freeze:
  schedule:
    - {at_step: 100, unfreeze: {layers: {last: 2}}}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {targets: [attention]}
freeze: {layers: {first: 6}, except: ["*.bias"]}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        spec = ctx.spec
        if spec.adapter is None:
            return
        freeze = spec.freeze
        given = {
            "embeddings": freeze.embeddings,
            "layers": freeze.layers is not None,
            "modules": freeze.modules is not None,
            "patterns": bool(freeze.patterns),
            "except": bool(freeze.except_),
        }
        for key, set_ in given.items():
            if not set_:
                continue
            train = "list them in adapter.train" if key == "except" else "use adapter.train"
            yield self.at(
                ctx,
                ("freeze", key),
                f"freeze.{key} has no effect: with an adapter the whole base is frozen "
                "except adapter.train",
                key=True,
                fix=f"remove it; to train base parameters beside the adapters {train}, and "
                "to thaw base blocks later use freeze.schedule",
            )
