"""``lint --fix``: the spec edits that rules offer with their findings, and applying them.

A rule that knows the change that removes its finding passes it to :meth:`Rule.at` as spec
edits (:class:`freezegen.spec.edit.Edit`); a change that alters what the run computes (a
smaller global batch, another precision, freezing more, a shorter warmup) is *unsafe* and is
applied only with ``--unsafe-fixes``, as ruff does. Fixes are applied one finding at a time and
the file is linted again after each, so every fix is computed on the spec as it then is, until
nothing applicable is left; the text is edited in place (freezegen.spec.edit), so comments and
layout survive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from freezegen.diagnostics import Diagnostic
from freezegen.spec.edit import Edit, EditError, apply_edits

MAX_PASSES = 10
"""Fix rounds per file; each removes a finding, so a spec needs a handful at most."""


@dataclass(frozen=True)
class SpecFix:
    """The edits that remove one finding, and whether they keep the training maths."""

    edits: tuple[Edit, ...]
    safe: bool


Lint = Callable[[str], tuple[list[Diagnostic], dict[Diagnostic, SpecFix]]]
"""Lint a spec's text: its findings, and the fixes offered for them."""


@dataclass
class FixOutcome:
    """What fixing one file did: the new text (None when nothing applied), the findings fixed,
    the fixes that could not be written (finding, reason), and the lint of the text as it ends
    (its findings and the fixes left)."""

    text: str | None = None
    fixed: list[Diagnostic] = field(default_factory=list)
    failed: list[tuple[Diagnostic, str]] = field(default_factory=list)
    findings: list[Diagnostic] = field(default_factory=list)
    fixes: dict[Diagnostic, SpecFix] = field(default_factory=dict)


def fix_text(text: str, lint: Lint, *, unsafe: bool) -> FixOutcome:
    """Apply the applicable fixes of ``lint(text)`` to ``text``, one finding per round,
    re-linting after each; returns what was done. A fix whose edits cannot be written
    faithfully is recorded in ``failed`` and not retried."""
    outcome = FixOutcome()
    tried: set[tuple[str, str]] = set()
    current, linted = text, None
    for _ in range(MAX_PASSES):
        findings, fixes = lint(current)
        linted = current
        chosen = next(
            (
                (d, f)
                for d in findings
                if (f := fixes.get(d)) is not None
                and (f.safe or unsafe)
                and (d.code, d.message) not in tried
            ),
            None,
        )
        if chosen is None:
            break
        diagnostic, fix = chosen
        tried.add((diagnostic.code, diagnostic.message))
        try:
            current = apply_edits(current, fix.edits)
        except EditError as exc:
            outcome.failed.append((diagnostic, str(exc)))
            continue
        outcome.fixed.append(diagnostic)
    if current != text:
        outcome.text = current
    # the last round linted the final text unless the rounds ran out right after an edit
    outcome.findings, outcome.fixes = (findings, fixes) if linted == current else lint(current)
    return outcome
