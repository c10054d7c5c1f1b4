"""How an adapter target names a module: one text for lint, the trace and generated scripts.

Torch-free and importing nothing, so :mod:`freezegen.arch.adapters` (lint) and
:mod:`freezegen.runtime.adapters` (the trace; a generated script carries this source too) match
names by the same code.
"""

from __future__ import annotations

ALL_LINEAR = "all-linear"
"""The ``targets`` value that names every linear in the selected blocks."""


def name_matches(name: str, target: str) -> bool:
    """Whether the dotted module ``name`` ends with ``target`` at a dot boundary: peft's rule
    for a list of target modules ("q_proj" and "self_attn.q_proj" match
    "model.layers.0.self_attn.q_proj"; "proj" does not)."""
    return name == target or name.endswith("." + target)
