"""A block index past the model's depth in freeze, unfreeze, adapter or checkpointing
selectors."""

from collections.abc import Iterator

from freezegen.diagnostics import Diagnostic
from freezegen.lint.context import LintContext
from freezegen.lint.rule import Rule
from freezegen.spec.models import FirstBlocks, LastBlocks
from freezegen.spec.selectors import out_of_range


class BlockOutOfRange(Rule):
    code = "FG103"
    name = "block-out-of-range"
    summary = "A block index at or past the model's number of blocks."
    valid = (
        """version: 1
model: {preset: gpt2}
freeze: {layers: "0-11"}
batch: {micro_batch_size: 2, seq_len: 128}
""",
    )
    invalid = (
        """version: 1
model: {preset: gpt2}
freeze: {layers: {first: 13}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
freeze:
  layers: [0, 1, 24]
  schedule:
    - {at_step: 10, unfreeze: {layers: {last: 14}}}
batch: {micro_batch_size: 2, seq_len: 128}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
activation_checkpointing: {layers: "6-12"}
""",
        """version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
adapter: {layers: {last: 16}}
""",
    )

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        arch = ctx.architecture
        if arch is None:
            return
        depth = arch.num_layers
        freeze = ctx.spec.freeze
        selectors: list[tuple[tuple[str | int, ...], object]] = [
            (("freeze", "layers"), freeze.layers)
        ]
        selectors += [
            (("freeze", "schedule", i, "unfreeze", "layers"), s.unfreeze.layers)
            for i, s in enumerate(freeze.schedule)
        ]
        if ctx.spec.adapter is not None:
            selectors.append((("adapter", "layers"), ctx.spec.adapter.layers))
        for loc, selector in selectors:
            if selector is None:
                continue
            bad = out_of_range(selector, depth)
            if bad:
                yield self._report(ctx, loc, selector, bad, depth)
        ac = ctx.spec.checkpointing
        if ac is not None:
            bad = out_of_range(ac.layers, depth)
            if bad:
                yield self._report(
                    ctx, ("activation_checkpointing", "layers"), ac.layers, bad, depth
                )

    def _report(
        self,
        ctx: LintContext,
        loc: tuple[str | int, ...],
        selector: object,
        bad: list[int],
        depth: int,
    ) -> Diagnostic:
        has = f"the model has {depth} blocks (0-{depth - 1})"
        # {first: N} and {last: N} name a count: say so in the user's words, not as the index
        # it reaches ({last: 10} on 4 blocks is not about a "block index 9").
        if isinstance(selector, (FirstBlocks, LastBlocks)):
            key, count = (
                ("first", selector.first)
                if isinstance(selector, FirstBlocks)
                else ("last", selector.last)
            )
            return self.at(
                ctx,
                loc,
                f"{{{key}: {count}}} selects {count} blocks, but {has}",
                fix=f"use {{{key}: {depth}}} or fewer",
            )
        shown = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        what = f"block index {shown} is" if len(bad) == 1 else f"block indices {shown} are"
        return self.at(ctx, loc, f"{what} out of range: {has}", fix=f"use indices below {depth}")
