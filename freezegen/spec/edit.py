"""Set values in a spec file by editing its text, touching nothing else.

``lint --fix`` and ``fit`` write their answer back into the user's YAML. A round-trip through a
YAML library would re-emit the whole file; here each change is a text edit at the positions
libyaml reports: a scalar's characters are replaced (a quoted string keeps its quotes), a missing
key is added to the end of its mapping (a new line at the mapping's indentation in block style,
``, key: value`` before the ``}`` in flow style), a missing section is added at the end of the
file. Comments, key order, quoting and the flow or block style of everything else survive byte
for byte. After the edits the file is parsed again and must hold exactly the values asked for,
or nothing is returned: a fix that cannot be written faithfully is refused, never half-written.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freezegen.spec._yaml import Loc, parse_document
from freezegen.spec.models import Spec


class EditError(Exception):
    """A change that cannot be written into the text faithfully (the message says why)."""


@dataclass(frozen=True)
class Edit:
    """Set the value at ``loc`` (mapping keys; the sections and keys are created when missing)
    to ``value``: a scalar, or a dict / list written in flow style (``{first: 8}``)."""

    loc: Loc
    value: Any

    def __str__(self) -> str:
        return f"{'.'.join(str(p) for p in self.loc)}: {render(self.value)}"


def edits_between(old: Spec, new: Spec) -> tuple[Edit, ...]:
    """The edits that turn ``old``'s values into ``new``'s: one per changed leaf (a value whose
    kind changed, e.g. a block range becoming ``{first: 8}``, is one edit of the whole value).
    Keys are the spec's own (``except``, not ``except_``)."""
    dump = {"mode": "json", "by_alias": True}
    return tuple(_diff((), old.model_dump(**dump), new.model_dump(**dump)))


def _diff(loc: tuple[str, ...], a: Any, b: Any) -> list[Edit]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in b:
            if a.get(key) != b[key]:
                out.extend(_diff((*loc, key), a.get(key), b[key]))
        return out
    return [] if a == b else [Edit(loc, _without_nulls(b))]


def _without_nulls(value: Any) -> Any:
    """A new section's value, less the fields left at null (the spec's 'not set')."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


@dataclass(frozen=True)
class SpecFile:
    """A spec file's text as the edits see it (UTF-8, its byte-order mark set aside), and how
    to write an edited text back as the file was: ``lint --fix`` and ``fit`` both write this
    way."""

    path: Path
    text: str
    bom: bool

    @classmethod
    def read(cls, path: Path) -> SpecFile:
        """Read ``path``; raises freezegen._io's ReadRefused / TooLarge and
        UnicodeDecodeError."""
        from freezegen._io import read_bytes
        from freezegen.spec._yaml import MAX_BYTES

        raw = read_bytes(path, MAX_BYTES)
        return cls(path, raw.decode("utf-8-sig"), raw.startswith(_BOM))

    def write(self, text: str) -> None:
        """Replace the file with ``text`` atomically, its byte-order mark kept; raises
        freezegen._io.WriteRefused with the file untouched."""
        from freezegen._io import write_file

        write_file(self.path, (_BOM if self.bom else b"") + text.encode("utf-8"))


_BOM = b"\xef\xbb\xbf"


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Return ``text`` with every edit applied, in order.

    Raises :class:`EditError` when a path runs through something that is not a mapping, through
    an alias or anchor (an edit there would change other places too), or when the edited text
    does not parse back to the values asked for.
    """
    bom = "\ufeff" if text.startswith("\ufeff") else ""  # libyaml's positions start after it
    text = text[len(bom) :]
    newline = "\r\n" if "\r\n" in text else "\n"
    original = text
    for edit in edits:
        text = _apply(text, edit, newline)
    _verify(original, text, edits)
    return bom + text


def render(value: Any) -> str:
    """``value`` as YAML 1.2 flow text that the spec loader reads back as the same value."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EditError(f"{value!r} has no place in a spec")
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return value if _plain_safe(value) else _double_quoted(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) for v in value) + "]"
    raise EditError(f"cannot write a {type(value).__name__} into a spec")


_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_./-]*")
_RESERVED = re.compile(
    r"(~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|no|on|off|Yes|No|On|Off|YES|NO|ON|OFF)"
)


def _plain_safe(value: str) -> bool:
    """Whether ``value`` reads back as this string when written unquoted."""
    return bool(_PLAIN.fullmatch(value)) and not _RESERVED.fullmatch(value)


def _double_quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    return f'"{escaped}"'


def _compose(text: str) -> Any:
    import yaml  # deferred, as in freezegen.spec._yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise EditError(f"the file does not parse as YAML: {exc}") from None


def _apply(text: str, edit: Edit, newline: str) -> str:
    import yaml

    root = _compose(text)
    if root is None:  # an empty file: the value becomes its first section
        end = "" if not text or text.endswith("\n") else newline
        return text + end + _block(edit.loc, edit.value, 0, newline)
    node, depth = root, 0
    while depth < len(edit.loc):
        if not isinstance(node, yaml.MappingNode):
            raise EditError(
                f"{_dotted(edit.loc[:depth])} is not a mapping, so {_dotted(edit.loc)} "
                "cannot be set"
            )
        pair = next(
            (
                (k, v)
                for k, v in node.value
                if isinstance(k, yaml.ScalarNode) and k.value == edit.loc[depth]
            ),
            None,
        )
        if pair is None:
            return _insert(text, node, edit.loc[depth:], edit.value, newline)
        key, child = pair
        # An alias resolves to the node it names, which sits earlier in the text than its key;
        # an anchored or tagged node starts with its & or !, which a replacement would drop.
        if child.start_mark.index < key.end_mark.index or text[child.start_mark.index] in "&!*":
            raise EditError(
                f"{_dotted(edit.loc[: depth + 1])} is an alias, an anchor or a tagged value; "
                "edit it by hand"
            )
        node, depth = child, depth + 1
    start, end = node.start_mark.index, node.end_mark.index
    if isinstance(node, yaml.ScalarNode):
        new = render(edit.value)
        if isinstance(edit.value, str) and node.style in ("'", '"'):
            new = _quoted(edit.value, node.style)
        return text[:start] + new + text[end:]
    if getattr(node, "flow_style", False):  # a flow collection: replace its whole text
        return text[:start] + render(edit.value) + text[end:]
    kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
    raise EditError(f"{_dotted(edit.loc)} is a block {kind}; set the values inside it instead")


def _quoted(value: str, style: str) -> str:
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


def _insert(text: str, mapping: Any, rest: Loc, value: Any, newline: str) -> str:
    """Add ``rest`` (a key, and the keys below it that do not exist) with ``value`` at the end
    of ``mapping``, in the mapping's own style."""
    if mapping.flow_style:
        close = mapping.end_mark.index - 1
        if text[close] != "}":
            raise EditError("a flow mapping whose end cannot be found; edit it by hand")
        inner = text[mapping.start_mark.index + 1 : close]
        entry = f"{render(rest[0])}: {render(_nest(rest[1:], value))}"
        body = inner.rstrip()  # the space or line break before the } stays after the entry
        glue = "" if not body.strip() else (" " if body.endswith(",") else ", ")
        start = mapping.start_mark.index + 1
        return text[:start] + body + glue + entry + inner[len(body) :] + text[close:]
    if not mapping.value:
        raise EditError("an empty block mapping; edit it by hand")
    first_key = mapping.value[0][0]
    indent = first_key.start_mark.column
    at = _line_end(text, _last_index(mapping))
    line = _block(rest, value, indent, newline)
    if at == len(text):
        return text + ("" if text.endswith("\n") else newline) + line
    return text[: at + 1] + line + text[at + 1 :]


def _nest(keys: Loc, value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _block(loc: Loc, value: Any, indent: int, newline: str) -> str:
    """``loc`` and ``value`` as block lines at ``indent``: one line per missing section."""
    lines = []
    for i, key in enumerate(loc[:-1]):
        lines.append(" " * (indent + 2 * i) + f"{render(key)}:")
    lines.append(" " * (indent + 2 * (len(loc) - 1)) + f"{render(loc[-1])}: {render(value)}")
    return newline.join(lines) + newline


def _last_index(node: Any) -> int:
    """The index just past the last character of ``node``'s own content (its last scalar or
    flow collection), not the blank lines and comments libyaml counts into a block's end."""
    import yaml

    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style:
        if not node.value:
            break
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node.end_mark.index


def _line_end(text: str, index: int) -> int:
    """The index of the newline ending the line that holds ``index - 1`` (len(text) when the
    last line has none): a comment after the value stays on its line."""
    newline = text.find("\n", max(index - 1, 0))
    return len(text) if newline < 0 else newline


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _verify(original: str, text: str, edits: Sequence[Edit]) -> None:
    """The edited text must read back as the original's data with exactly ``edits`` applied:
    the values asked for, and nothing else changed."""
    before, _ = parse_document(original, "<original>")
    after, problems = parse_document(text, "<edited>")
    if after is None or problems:
        raise EditError("the edited file would not parse; nothing was written")
    expected = copy.deepcopy(before.data if before is not None else None)
    for edit in edits:
        if not isinstance(expected, dict):
            expected = {}
        node = expected
        for key in edit.loc[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[edit.loc[-1]] = _plain(edit.value)
    if after.data != expected:
        raise EditError(
            f"{'; '.join(str(e) for e in edits)} would not read back as written; nothing was "
            "written"
        )


def _plain(value: Any) -> Any:
    """``value`` as the loader reads it back (tuples are lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
