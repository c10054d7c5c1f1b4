"""Block-index selectors, resolved in one place for every consumer.

Freeze and unfreeze ``layers`` take ``{first: N}``, ``{last: N}``, ``"0-5,8"`` or ``[0, 1, 2]``;
checkpoint ``layers`` take ``"all"``, ``"every-N"``, a range or a list. :func:`named_blocks` says
which indices a selector names for a model of a given depth, :func:`out_of_range` which of them
the model does not have; the spec models' ``indices(depth)`` (docs/architecture.md, "Freeze
order") keep the blocks that exist. lint, both estimators and the generated script's constants
all come from here.
"""

from __future__ import annotations

import re
from typing import Any

from freezegen.spec._yaml import shorten
from freezegen.spec.limits import MAX_BLOCKS

RANGE_PATTERN = r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$"
_RANGE = re.compile(RANGE_PATTERN)
ALL = "all"
EVERY_PREFIX = "every-"

Span = tuple[int, int]
"""Blocks ``start`` to ``stop - 1``: a range is one span however many blocks it names, and only
the blocks below a limit (the model's depth, where known) are ever listed."""


def parse_ranges(text: str) -> list[Span]:
    """Return the merged, sorted spans of ``"0-5,8"``; raise ValueError on bad syntax or order,
    or an index past :data:`~freezegen.spec.limits.MAX_BLOCKS`."""
    if not _RANGE.match(text):
        raise ValueError(f'{text!r} is not a block range; write it like "0-5" or "0-3,8,10-11"')
    spans: list[Span] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        start = _block_index(lo)
        end = _block_index(hi) if hi.strip() else start
        if end < start:
            raise ValueError(f"range {part.strip()!r} runs backwards; write it as {end}-{start}")
        spans.append((start, end + 1))
    return _merge(spans)


def _block_index(digits: str) -> int:
    digits = digits.strip().lstrip("0") or "0"
    # the length first: int() of a few thousand digits is slow, and past 4300 it raises
    if len(digits) > len(str(MAX_BLOCKS)) or int(digits) >= MAX_BLOCKS:
        raise ValueError(f"block index {shorten(digits)} is past the limit of {MAX_BLOCKS} blocks")
    return int(digits)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def every(selector: object) -> int | None:
    """The stride of ``"all"`` (1) or ``"every-N"`` (N); None for any other selector."""
    if selector == ALL:
        return 1
    if isinstance(selector, str) and selector.startswith(EVERY_PREFIX):
        return int(selector.removeprefix(EVERY_PREFIX))
    return None


def named_blocks(selector: object, depth: int, limit: int = MAX_BLOCKS) -> list[int]:
    """Return the sorted block indices a validated selector names in a model of ``depth``
    blocks, those below ``limit`` only (pass ``depth`` to keep the blocks that exist).

    ``{first: N}``, a range and a list may name blocks past the model (see :func:`out_of_range`);
    ``{last: N}``, ``"all"`` and ``"every-N"`` never do. Raises TypeError for a value that is
    not a selector.
    """
    from freezegen.spec.models import FirstBlocks, LastBlocks

    if isinstance(selector, FirstBlocks):
        return list(range(min(selector.first, limit)))
    if isinstance(selector, LastBlocks):
        return list(range(max(depth - selector.last, 0), min(depth, limit)))
    stride = every(selector)
    if stride is not None:
        return list(range(0, min(depth, limit), stride))
    if isinstance(selector, str):
        return [i for start, stop in parse_ranges(selector) for i in range(start, min(stop, limit))]
    if isinstance(selector, list):
        return sorted({i for i in selector if i < limit})
    raise TypeError(f"not a block selector: {selector!r}")


def out_of_range(selector: object, depth: int) -> list[int]:
    """Return the sorted indices ``selector`` reaches that a model of ``depth`` blocks lacks.

    ``{last: N}`` with N past the depth reaches block N-1, below the bottom of the model.
    """
    from freezegen.spec.models import LastBlocks

    bad = {i for i in named_blocks(selector, depth) if i >= depth}
    if isinstance(selector, LastBlocks) and selector.last > depth:
        bad.add(selector.last - 1)
    return sorted(bad)


def existing_blocks(selector: object | None, depth: int) -> list[int]:
    """Return the sorted indices of the blocks ``selector`` selects in a model of ``depth`` blocks
    (none for no selector): what the spec models' ``indices(depth)`` return. Nothing past the
    model is built, whatever the selector names."""
    if selector is None:
        return []
    return named_blocks(selector, depth, limit=depth)


def runtime_selection(section: Any, depth: int | None) -> list[int] | dict[str, int]:
    """Return a section's block selection as freezegen.runtime.freezing takes it: the section's
    ``indices(depth)``; when the depth is unknown (a factory model, until it is built),
    ``{"last": N}`` and ``{"every": K}`` wait for it and other selectors name their indices."""
    from freezegen.spec.models import LastBlocks

    if depth is not None:
        return section.indices(depth)
    selector = section.layers
    if isinstance(selector, LastBlocks):
        return {"last": selector.last}
    stride = every(selector)
    if stride is not None:
        return {"every": stride}
    return named_blocks(selector, 0)
