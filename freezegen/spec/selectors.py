"""Block-index selectors: ``{first: N}``, ``{last: N}``, ``"0-5,8"`` and ``[0, 1, 2]``."""

from __future__ import annotations

import re

RANGE_PATTERN = r"^\s*\d+\s*(-\s*\d+\s*)?(,\s*\d+\s*(-\s*\d+\s*)?)*$"
_RANGE = re.compile(RANGE_PATTERN)


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


def select_blocks(selector: object, num_layers: int) -> list[int]:
    """Return the block indices a validated selector names (may reach past ``num_layers``)."""
    from freezegen.spec.models import FirstBlocks, LastBlocks

    if isinstance(selector, FirstBlocks):
        return list(range(selector.first))
    if isinstance(selector, LastBlocks):
        return list(range(max(num_layers - selector.last, 0), num_layers))
    if isinstance(selector, str):
        return parse_ranges(selector)
    if isinstance(selector, list):
        return sorted(set(selector))
    raise TypeError(f"not a block selector: {selector!r}")
