"""``freezegen estimate --sweep key=v1,v2,...``: one spec per value of a dotted spec key.

A sweep is written ``dotted.key=value,value,...``. Keys are the spec's own (``freeze.layers.first``,
``batch.micro_batch_size``, ``activation_checkpointing``, ``precision`` ...), checked against the
spec models with a did-you-mean. Values are YAML 1.2 scalars read exactly as in a spec file
(``true``, ``0o7``, ``2.0e-5``; ``yes`` stays a string); a flow value (``{first: 6}``, ``[0, 1]``)
or a quoted one (``'0-3,8'``) may hold commas. Several sweeps make a grid (every combination).

Each point is the spec as the user wrote it (the YAML data, not a re-dump of the model) with the
key set, validated again by the spec models; a problem is a :class:`SweepError` that knows which
part of the ``--sweep`` argument it is about.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from freezegen.spec._validate import _close, _keys_at, _message, is_union_tag
from freezegen.spec._yaml import parse_document, shorten
from freezegen.spec.models import Spec

__all__ = ["MAX_POINTS", "Sweep", "SweepError", "SweepPoint", "expand", "parse_sweep"]

MAX_POINTS = 64


class SweepError(Exception):
    """A bad ``--sweep`` argument: the message, the argument and the span it is about."""

    def __init__(self, message: str, arg: str = "", start: int = 0, end: int | None = None):
        super().__init__(message)
        self.message = message
        self.arg = arg
        self.start = start
        self.end = len(arg) if end is None else end

    def render(self) -> str:
        """The message, then the argument with a caret line under the offending part."""
        if not self.arg:
            return self.message
        width = max(self.end - self.start, 1)
        return (
            f"--sweep {self.arg}: {self.message}\n  {self.arg}\n  {' ' * self.start}{'^' * width}"
        )


@dataclass(frozen=True)
class Sweep:
    """One ``--sweep`` argument, parsed: the dotted key, the values and where each one sits."""

    arg: str
    key: tuple[str, ...]
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]

    @property
    def name(self) -> str:
        return ".".join(self.key)


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the swept values by key (label and parsed value) and its spec."""

    values: dict[str, Any]
    labels: dict[str, str]
    spec: Spec = field(repr=False)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.labels.items())


def parse_sweep(arg: str) -> Sweep:
    """Parse ``dotted.key=v1,v2,...``; raise :class:`SweepError` located in ``arg``."""
    key_text, eq, _ = arg.partition("=")
    if not eq:
        raise SweepError("expected key=value1,value2,... (e.g. freeze.layers.first=0,6,12)", arg)
    key = _check_key(arg, key_text)
    offset = len(key_text) + 1
    values, labels, spans = [], [], []
    for start, end in _split(arg, offset):
        piece = arg[start:end]
        stripped = piece.strip()
        lead = len(piece) - len(piece.lstrip())
        span = (start + lead, start + lead + max(len(stripped), 1))
        if not stripped:
            raise SweepError("empty value (two commas in a row, or a trailing comma?)", arg, *span)
        values.append(_parse_value(arg, stripped, span))
        labels.append(stripped)
        spans.append(span)
    return Sweep(arg, key, tuple(values), tuple(labels), tuple(spans))


def _check_key(arg: str, key_text: str) -> tuple[str, ...]:
    if not key_text.strip():
        raise SweepError("missing key before '='", arg, 0, max(len(key_text), 1))
    parts = key_text.split(".")
    pos = 0
    for i, part in enumerate(parts):
        span = (pos, pos + max(len(part), 1))
        if not part:
            raise SweepError("empty key part (a stray '.')", arg, *span)
        keys = _keys_at(Spec, tuple(parts[:i]))
        if not keys:
            parent = ".".join(parts[:i])
            raise SweepError(f"'{parent}' takes a value, not keys", arg, *span)
        if part not in keys:
            where = f" in {'.'.join(parts[:i])}" if i else ""
            match = _close(part, keys)
            hint = (
                f"did you mean '{match}'?"
                if match
                else "expected one of: " + ", ".join(sorted(keys))
            )
            raise SweepError(f"unknown key '{shorten(part)}'{where}; {hint}", arg, *span)
        pos += len(part) + 1
    return tuple(parts)


def _split(arg: str, offset: int) -> list[tuple[int, int]]:
    """Spans of the comma-separated values after ``offset``, ignoring commas inside quotes or
    flow brackets."""
    spans, depth, quote, start = [], 0, "", offset
    for i in range(offset, len(arg)):
        ch = arg[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(depth - 1, 0)
        elif ch == "," and depth == 0:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(arg)))
    return spans


def _parse_value(arg: str, text: str, span: tuple[int, int]) -> Any:
    doc, problems = parse_document(text, "--sweep")
    if doc is None or problems:
        why = problems[0].message if problems else "not a YAML value"
        raise SweepError(f"cannot read {text!r} as a YAML value: {why}", arg, *span)
    return doc.data


def expand(
    raw: dict[str, Any], sweeps: list[Sweep], base_dir: Path | None = None
) -> list[SweepPoint]:
    """Return one validated spec per combination of the sweeps' values, in order.

    ``raw`` is the spec file's YAML data. Raises :class:`SweepError` for a repeated key, too many
    points, or a value the spec models refuse (located at that value).
    """
    seen: set[str] = set()
    for sw in sweeps:
        if sw.name in seen:
            raise SweepError(f"{sw.name} is swept twice; give it one --sweep", sw.arg)
        seen.add(sw.name)
    count = 1
    for sw in sweeps:
        count *= len(sw.values)
    if count > MAX_POINTS:
        raise SweepError(f"{count} sweep points; at most {MAX_POINTS} (fewer values, please)")
    points = []
    for combo in itertools.product(*(range(len(sw.values)) for sw in sweeps)):
        data = copy.deepcopy(raw)
        for sw, index in zip(sweeps, combo, strict=True):
            _assign(data, sw.key, copy.deepcopy(sw.values[index]))
        try:
            spec = Spec.model_validate(data, context={"base_dir": base_dir})
        except ValidationError as exc:
            sw, index = _blame(exc, sweeps, combo)
            raise SweepError(_describe(exc), sw.arg, *sw.spans[index]) from None
        points.append(
            SweepPoint(
                {sw.name: sw.values[i] for sw, i in zip(sweeps, combo, strict=True)},
                {sw.name: sw.labels[i] for sw, i in zip(sweeps, combo, strict=True)},
                spec,
            )
        )
    return points


def _assign(data: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    cur = data
    for part in key[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):  # null, false, a range string...: becomes a mapping
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[key[-1]] = value


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        loc = [str(p) for p in err["loc"] if not is_union_tag(p) and not isinstance(p, int)]
        parts.append(f"{'.'.join(loc) or 'spec'}: {_message(err)}")
    return "; ".join(parts)


def _blame(exc: ValidationError, sweeps: list[Sweep], combo: tuple[int, ...]) -> tuple[Sweep, int]:
    """The sweep whose key is closest to the first error (the last one when unsure)."""
    errs = exc.errors(include_url=False)
    loc = tuple(str(p) for p in errs[0]["loc"] if not is_union_tag(p)) if errs else ()
    best = len(sweeps) - 1
    best_len = -1
    for i, sw in enumerate(sweeps):
        common = 0
        for a, b in zip(sw.key, loc, strict=False):
            if a != b:
                break
            common += 1
        if common > best_len:
            best, best_len = i, common
    return sweeps[best], combo[best]
