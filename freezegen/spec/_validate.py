"""Turn pydantic validation errors into located, readable FG0xx diagnostics."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from freezegen.diagnostics import Diagnostic
from freezegen.spec._yaml import Document, Loc, shorten

_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}
_QUOTED = re.compile(r"'([^']*)'")


def is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part.startswith("<") and part.endswith(">")


def diagnostics_from_error(
    error: ValidationError, doc: Document, root: type[BaseModel]
) -> list[Diagnostic]:
    """Return one diagnostic per pydantic error, located in ``doc`` and with did-you-mean hints."""
    raw = error.errors(include_url=False)
    out: list[Diagnostic] = []
    suggested: set[tuple[Loc, str]] = set()
    for err in raw:
        if err["type"] == "extra_forbidden":
            loc = _clean(err["loc"])
            parent, key = loc[:-1], str(loc[-1])
            match = _close(key, _keys_at(root, parent))
            if match:
                suggested.add((parent, match))
    for err in raw:
        diag = _one(err, doc, root, suggested)
        if diag is not None:
            out.append(diag)
    return out


def _clean(loc: tuple[Any, ...]) -> Loc:
    return tuple(p for p in loc if not is_union_tag(p))


def _where(loc: Loc) -> str:
    return ".".join(shorten(p, 40) for p in loc) or "the spec"


def _one(
    err: Any, doc: Document, root: type[BaseModel], suggested: set[tuple[Loc, str]]
) -> Diagnostic | None:
    kind = err["type"]
    loc = _clean(err["loc"])
    ctx = err.get("ctx") or {}
    if ctx.get("at"):
        loc = (*loc, ctx["at"])
    line, col = doc.locate(loc, key=kind in ("extra_forbidden", "missing"))
    fix = None
    if kind == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        keys = _keys_at(root, parent)
        match = _close(key, keys)
        where = f" in {_where(parent)}" if parent else ""
        message = f"unknown key '{shorten(key)}'{where}"
        if match:
            fix = f"did you mean '{match}'?"
        elif keys:
            fix = "expected one of: " + ", ".join(sorted(keys))
        return Diagnostic("FG002", message, doc.path, line, col, fix=fix)
    if kind == "missing":
        parent, key = loc[:-1], str(loc[-1])
        if (parent, key) in suggested:
            return None  # the misspelt key next to it already says this
        where = f" in {_where(parent)}" if parent else ""
        return Diagnostic(
            "FG005", f"missing required key '{shorten(key)}'{where}", doc.path, line, col
        )
    message = _message(err)
    if kind == "unknown_choice":
        match = _close(str(ctx.get("value")), ctx.get("choices", []))
        fix = f"did you mean '{match}'?" if match else "known: " + ", ".join(ctx["choices"])
    elif kind == "literal_error":
        choices = _QUOTED.findall(str(ctx.get("expected", "")))
        match = _close(_shown(err.get("input")), choices)
        fix = f"did you mean '{match}'?" if match else None
    elif kind == "bool_type" and str(err.get("input")).lower() in _YAML11_BOOLS:
        fix = "YAML 1.2 reads yes/no/on/off as strings; write true or false"
    field = _where(tuple(p for p in loc if not isinstance(p, int)) or loc)
    return Diagnostic("FG004", shorten(f"{field}: {message}", 300), doc.path, line, col, fix=fix)


def _message(err: Any) -> str:
    msg: str = err["msg"]
    got = err.get("input")
    msg = msg.replace("Input should be", "must be").replace("Value error, ", "")
    if msg.startswith("must be") and not isinstance(got, (dict, list)):
        msg = f"{msg}, got {_shown(got)}"
    if err["type"] in ("model_type", "dict_type"):
        msg = "must be a mapping of keys to values"
    return msg


def _shown(value: object) -> str:
    """``value`` as a message shows it: YAML's null, a huge integer by its size (str() of one
    past 4300 digits raises, and nobody reads them), anything else repr()'d and shortened."""
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    return shorten(repr(value))


def _close(word: str, choices: typing.Iterable[str]) -> str | None:
    if len(word) > 100:  # difflib indexes every character: seconds and 100 MB for a 3 MB value
        return None
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _keys_at(root: type[BaseModel], loc: Loc) -> set[str]:
    """The keys a mapping at ``loc`` accepts, found by walking the model annotations."""
    models: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue  # list item: the element model is already collected
        nxt: list[type[BaseModel]] = []
        for model in models:
            for name, info in model.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_models_in(info.annotation))
        models = nxt
    keys: set[str] = set()
    for model in models:
        keys.update(info.alias or name for name, info in model.model_fields.items())
    return keys


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out
