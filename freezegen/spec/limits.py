"""The largest (and smallest) numbers a spec may hold, each set by what receives it.

Every numeric field of :mod:`freezegen.spec.models` is bounded here, so that a value the schema
accepts is one that lint, both estimators, the renderer and the generated script can all take:
no OverflowError, no int-to-str digit limit, no range materialised past any model. A value past
a limit is a located FG004 error. The README's "Guarantees" section lists them.
"""

from __future__ import annotations

MAX_COUNT = 2**31 - 1
"""Steps, batch sizes, sequence length, labels, GPUs, nodes, checkpoints kept: what a C int (and
so every torch size argument, on every platform) holds. Products of several stay far inside
int64 and float64."""

MAX_SEED = 2**63 - 1
"""``train.seed``: torch.manual_seed takes up to 2**64 - 1, and a resumed multi-process run
reseeds with ``SEED + 1_000_003 * step + rank``, which stays below that for any seed up to
2**63 - 1 and counts up to MAX_COUNT (random takes any int; numpy gets ``seed % 2**32``)."""

MAX_BLOCKS = 10_000
"""Block counts and indices in selectors (``{first: N}``, ``{last: N}``, ranges, lists,
``every-N``): no model has that many blocks, and a factory model's selection (its depth is
known only once the script builds it) is written into the script as a list of indices."""

MIN_MEMORY_GIB = 0.001
"""``hardware.memory_gib``: at least about 1 MiB, so a card is never rounded down to no memory
(``1e-300`` read as "no hardware" and passed every memory rule)."""

MAX_MEMORY_GIB = 2**20
"""``hardware.memory_gib`` and ``reserve_gib``: 1 PiB per device, far past any card, and small
enough that byte counts stay exact integers."""
