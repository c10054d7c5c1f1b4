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

RANGE_PATTERN = r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$"
_RANGE = re.compile(RANGE_PATTERN)
ALL = "all"
EVERY_PREFIX = "every-"


def parse_ranges(text: str) -> list[int]:
    """Return the sorted block indices of ``"0-5,8"``; raise ValueError on bad syntax or order."""
    if not _RANGE.match(text):
        raise ValueError(f'{text!r} is not a block range; write it like "0-5" or "0-3,8,10-11"')
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        start = int(lo)
        end = int(hi) if hi.strip() else start
        if end < start:
            raise ValueError(f"range {part.strip()!r} runs backwards; write it as {end}-{start}")
        out.update(range(start, end + 1))
    return sorted(out)


def every(selector: object) -> int | None:
    """The stride of ``"all"`` (1) or ``"every-N"`` (N); None for any other selector."""
    if selector == ALL:
        return 1
    if isinstance(selector, str) and selector.startswith(EVERY_PREFIX):
        return int(selector.removeprefix(EVERY_PREFIX))
    return None


def named_blocks(selector: object, depth: int) -> list[int]:
    """Return the sorted block indices a validated selector names in a model of ``depth`` blocks.

    ``{first: N}``, a range and a list may name blocks past the model (see :func:`out_of_range`);
    ``{last: N}``, ``"all"`` and ``"every-N"`` never do. Raises TypeError for a value that is
    not a selector.
    """
    from freezegen.spec.models import FirstBlocks, LastBlocks

    if isinstance(selector, FirstBlocks):
        return list(range(selector.first))
    if isinstance(selector, LastBlocks):
        return list(range(max(depth - selector.last, 0), depth))
    stride = every(selector)
    if stride is not None:
        return list(range(0, depth, stride))
    if isinstance(selector, str):
        return parse_ranges(selector)
    if isinstance(selector, list):
        return sorted(set(selector))
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
    (none for no selector): what the spec models' ``indices(depth)`` return."""
    if selector is None:
        return []
    return [i for i in named_blocks(selector, depth) if i < depth]


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
