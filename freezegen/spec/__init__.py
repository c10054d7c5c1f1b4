"""Load a YAML spec into a validated :class:`Spec`, keeping the position of every node.

Public surface: :func:`load_spec` (raises :class:`SpecError`), :func:`load` (never raises for a
user's mistake; returns every diagnostic), :class:`LoadResult`, and the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from freezegen.diagnostics import Diagnostic, Severity, SpecError
from freezegen.spec._yaml import Document, decode, parse_document, read_text
from freezegen.spec.models import Spec

__all__ = ["Document", "LoadResult", "Spec", "SpecError", "load", "load_spec", "load_text"]


@dataclass
class LoadResult:
    """What loading a spec produced: the spec when it is valid, and every problem found."""

    path: str
    document: Document | None = None
    spec: Spec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.spec is not None and not any(
            d.severity is Severity.ERROR for d in self.diagnostics
        )


def load(path: str | Path) -> LoadResult:
    """Read and validate the spec at ``path``; problems come back located, never raised."""
    path = Path(path)
    text, problems = read_text(path)
    if text is None:
        return LoadResult(str(path), diagnostics=problems)
    return load_text(text, str(path), base_dir=path.parent)


def load_text(
    text: str | bytes, shown: str = "<string>", *, base_dir: str | Path | None = None
) -> LoadResult:
    """Validate spec text; relative paths in it resolve against ``base_dir`` (default: cwd)."""
    if isinstance(text, bytes):
        decoded, problems = decode(text, shown)
        if decoded is None:
            return LoadResult(shown, diagnostics=problems)
        text = decoded
    doc, problems = parse_document(text, shown)
    result = LoadResult(shown, doc, diagnostics=problems)
    if doc is None:
        return result
    if doc.data is None:  # "---" or "~" alone: as empty as an empty file
        result.diagnostics.append(Diagnostic("FG004", "the spec is empty", shown, 1, 1))
        return result
    if not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else "a single value"
        result.diagnostics.append(
            Diagnostic(
                "FG004",
                f"a spec is a mapping of keys (version, model, batch, ...), not {kind}",
                shown,
                *doc.locate(()),
            )
        )
        return result
    from pydantic import ValidationError

    from freezegen.spec._validate import diagnostics_from_error

    try:
        spec = Spec.model_validate(doc.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        result.diagnostics.extend(diagnostics_from_error(exc, doc, Spec))
    else:
        result.spec = spec
    return result


def load_spec(path: str | Path) -> Spec:
    """Return the validated spec at ``path``; raise :class:`SpecError` listing every problem."""
    result = load(path)
    if result.spec is None:
        raise SpecError(sorted(result.diagnostics, key=Diagnostic.sort_key))
    return result.spec
