"""Loading the one spec a command works on, its problems reported as a usage error."""

from __future__ import annotations

from pathlib import Path

from freezegen.commands.result import UsageError
from freezegen.spec import LoadResult, Spec


def load_or_report(path: Path) -> LoadResult:
    """Load ``path``; a result whose ``spec`` is set.

    Raises UsageError holding the located diagnostics, sorted by position and rendered as
    ``lint`` prints them, when the spec does not load.
    """
    from freezegen.diagnostics import Diagnostic
    from freezegen.report import render
    from freezegen.spec import load

    result = load(path)
    if result.spec is None:
        problems = sorted(result.diagnostics, key=Diagnostic.sort_key)
        raise UsageError(render("text", problems, files=1), prefixed=False)
    return result


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
