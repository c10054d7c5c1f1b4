"""The one gate every command that reads a spec goes through: load it and lint it as ``lint``
does, and stop with lint's located diagnostics when it has an error.

What stops a command: every error ``lint`` reports about the spec itself, schema (FG0xx) and
consistency (FG1xx), after ``[tool.freezegen]`` selection and ``# freezegen: ignore`` comments,
exactly as ``lint`` applies them (:func:`freezegen.lint.engine.lint_result` is the one path);
the command prints what ``lint --ignore FG2`` prints.
What does not: the memory rules (FG2xx, "does not fit", "near the budget"). They judge the run
on one card, not the spec: ``estimate`` exists to show an over-budget estimate, and a script
generated for a card the spec's ``hardware`` does not name may well fit. ``lint`` reports them.
"""

from __future__ import annotations

from pathlib import Path

from freezegen.commands.result import UsageError
from freezegen.spec import LoadResult, Spec

FIT_CODES = ("FG2",)
"""Rules about the run fitting the card: ``lint`` runs them, the gate does not."""


def load_or_report(path: Path) -> LoadResult:
    """Load ``path`` and lint it as ``lint`` would (memory rules aside); a result whose
    ``spec`` is set and has no error-level finding.

    A ``pretrained`` model's config is fetched into the cache (:func:`fetch_pretrained`) once the
    spec loads, so the rules can see the model. Raises UsageError holding the findings,
    rendered as ``lint`` prints them, when the spec does not load or has an error; UsageError
    for a malformed ``[tool.freezegen]`` table too.
    """
    from freezegen.spec import load

    result = load(path)
    if not result.ok:  # a schema error: say so before anything is fetched
        _lint_or_stop(path, result)
    assert result.spec is not None  # ok says so
    fetch_pretrained(path, result.spec)
    _lint_or_stop(path, result)
    return result


def check_point(path: Path, result: LoadResult, spec: Spec, where: str) -> None:
    """Lint ``spec``, a variant of the loaded ``result`` (an ``estimate --sweep`` point), as
    :func:`load_or_report` lints the spec itself, its findings located in the spec file.

    Raises UsageError naming the point (``where``) and holding the findings when one is an error.
    """
    variant = LoadResult(result.path, result.document, spec)
    _lint_or_stop(path, variant, heading=f"{path} {where}:")


def _lint_or_stop(path: Path, result: LoadResult, heading: str | None = None) -> None:
    """Lint ``result`` with the options ``lint`` uses for ``path``, the memory rules left out;
    raise the UsageError that prints the findings as ``lint`` does (after ``heading``) when one
    is an error."""
    from freezegen.diagnostics import Severity
    from freezegen.lint.engine import lint_result
    from freezegen.lint.registry import REGISTRY
    from freezegen.report import render
    from freezegen.rules import ConfigError, Overrides

    try:
        options = REGISTRY.options_for(path, Overrides())
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    found = lint_result(result, options, skip=FIT_CODES)
    if any(d.severity is Severity.ERROR for d in found):
        text = render("text", found, files=1)
        raise UsageError(text if heading is None else f"{heading}\n{text}", prefixed=False)


def fetch_pretrained(path: Path, spec: Spec) -> None:
    """Make sure a ``pretrained`` model's config is in the local Hugging Face cache, downloading
    it when the Hub is reachable (lint never does: it stays offline).

    Raises UsageError, saying how to get the model, when it is neither cached nor reachable.
    """
    if spec.model.pretrained is None:
        return
    from freezegen.hub import NotCached, fetch_config

    try:
        fetch_config(spec.model.pretrained)
    except NotCached as exc:
        raise UsageError(f"{path}: {exc}") from None
