"""What a spec's validation-driven features need: an ``eval`` section, and data to evaluate on.

``checkpoint.keep_best``, ``train.early_stop`` and a ``freeze.schedule`` entry that thaws on a
plateau all act on validation losses, which only an ``eval`` section produces; an evaluation
needs held-out examples from the data source. Lint (FG124, FG125) and the generator ask here,
so both refuse the same specs with the same words.
"""

from __future__ import annotations

from freezegen.spec.models import FILE_SOURCES, Spec

Loc = tuple[str | int, ...]

# Sources whose script builds a validation set (build_validation) by itself: synthetic data
# holds out the sequences past the training set's. File sources evaluate on data.validation (a
# file, or a seeded split of path); a factory returns one dataset, so it has none to hold out.
SOURCES_WITH_VALIDATION = ("synthetic",)


def validation_consumers(spec: Spec) -> list[tuple[Loc, str]]:
    """Return where ``spec`` asks for validation losses (keep_best, early_stop, plateau
    entries), each with the key's name for a message; empty when it asks for none."""
    found: list[tuple[Loc, str]] = []
    if spec.checkpoint.keep_best:
        found.append((("checkpoint", "keep_best"), "checkpoint.keep_best"))
    if spec.train.early_stop is not None:
        found.append((("train", "early_stop"), "train.early_stop"))
    for i, entry in enumerate(spec.freeze.schedule):
        if entry.plateau is not None:
            found.append((("freeze", "schedule", i, "when"), f"freeze.schedule[{i}].when.plateau"))
    return found


def has_validation_data(spec: Spec) -> bool:
    """Whether the script of ``spec`` has held-out examples to evaluate on."""
    if spec.data.source in SOURCES_WITH_VALIDATION:
        return True
    return spec.data.source in FILE_SOURCES and spec.data.validation is not None


def missing_validation_data(spec: Spec) -> str | None:
    """Why ``spec``'s eval section has nothing to evaluate on, or None (no eval, or data)."""
    if spec.eval is None or has_validation_data(spec):
        return None
    return f"eval needs validation data, and data.source {spec.data.source} has none: " + (
        "set data.validation to {path: ...} or {split: 0.05}"
        if spec.data.source in FILE_SOURCES
        else "only synthetic data holds out sequences by itself; a factory gives one dataset"
    )


def uses_plateaus(spec: Spec) -> bool:
    """Whether some ``freeze.schedule`` entry thaws on a validation plateau."""
    return any(entry.plateau is not None for entry in spec.freeze.schedule)
