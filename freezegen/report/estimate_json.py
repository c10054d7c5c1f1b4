"""``freezegen estimate --format json``: one object, or a list of them for a sweep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from freezegen.memory.estimate import MemoryEstimate
from freezegen.memory.explain import Explanation
from freezegen.report.estimate_explain import explanation_json


def render_estimates_json(
    estimates: Sequence[MemoryEstimate],
    sweep_values: Sequence[dict[str, Any]] | None,
    explanations: Sequence[Explanation],
) -> str:
    """Return the estimates as indented JSON: one object (no sweep) or one per sweep point.

    A sweep point's object carries its ``sweep`` values; with explanations (one per estimate),
    each carries its ``explain`` terms.
    """
    items = []
    for i, estimate in enumerate(estimates):
        item = estimate.to_json_dict()
        if sweep_values is not None:
            item["sweep"] = sweep_values[i]
        if explanations:
            item["explain"] = explanation_json(explanations[i])
        items.append(item)
    data: Any = items if sweep_values is not None else items[0]
    return json.dumps(data, indent=2) + "\n"
