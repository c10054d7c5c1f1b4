"""A run's ``metrics.jsonl`` read back: one dataclass per record kind, in step order.

The generated script writes the file (schema: docs/metrics.md): one JSON object per line, each
with ``kind``, ``step`` and ``time``. This module is the one reader of that schema. It is
tolerant the way the schema asks: unknown kinds and unknown fields are skipped, so a newer
script's file still reads. It is strict about what it does know: a line that is not a JSON
object, or a known record with a missing or mistyped field, is a :class:`MetricsError` located
to ``path:LINE``. The one exception is a last line without its newline that does not parse:
the run is writing it (or was killed while it did), so it is left out and counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from freezegen._io import ReadRefused, read_bytes

__all__ = [
    "SCHEMA",
    "EvalRecord",
    "MemoryRecord",
    "MetricsError",
    "RunLog",
    "RunRecord",
    "ThawRecord",
    "TrainRecord",
    "read_metrics",
]

SCHEMA = 1
FILE_NAME = "metrics.jsonl"
# A record is ~250 bytes: a million logged steps fit several times over. Larger is not a log.
_READ_LIMIT = 1 << 30


class MetricsError(Exception):
    """A metrics file that cannot be read, or a line in it that breaks the schema; ``str``
    is ``path:LINE: what is wrong`` (no line for the whole file)."""

    def __init__(self, path: str | Path, message: str, line: int = 0) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.message = str(path), line, message


# Field types as the schema gives them: the reader checks these and nothing else.
_INT, _FLOAT, _STR = "int", "float", "str"
_TYPE_WORDS = {_INT: "an integer", _FLOAT: "a number", _STR: "a string"}


@dataclass(frozen=True)
class _Record:
    kind: ClassVar[str]
    step: int
    time: float


@dataclass(frozen=True)
class RunRecord(_Record):
    """A run started (step 0) or resumed (the resumed step)."""

    kind: ClassVar[str] = "run"
    schema: int
    max_steps: int
    device: str
    world_size: int
    predicted_peak_bytes: int | None
    trainable_parameters: int
    total_parameters: int


@dataclass(frozen=True)
class TrainRecord(_Record):
    """One optimizer step: its loss, learning rate, gradient norm, speed and memory."""

    kind: ClassVar[str] = "train"
    loss: float
    lr: float
    grad_norm: float | None
    tokens_per_s: float
    max_allocated_bytes: int | None
    reserved_bytes: int | None


@dataclass(frozen=True)
class EvalRecord(_Record):
    """A validation pass: token-weighted loss, its perplexity, the tokens it covered."""

    kind: ClassVar[str] = "eval"
    val_loss: float
    val_ppl: float
    val_tokens: int


@dataclass(frozen=True)
class ThawRecord(_Record):
    """A freeze.schedule entry (0-based) thawed ``tensors`` parameter tensors."""

    kind: ClassVar[str] = "thaw"
    entry: int
    tensors: int


@dataclass(frozen=True)
class MemoryRecord(_Record):
    """The allocator's figures at the end of a run or probe, beside freezegen's prediction."""

    kind: ClassVar[str] = "memory"
    max_allocated_bytes: int | None
    predicted_peak_bytes: int | None
    reserved_bytes: int | None
    fragmentation_bytes: int | None
    alloc_retries: int | None
    cuda_malloc_count: int | None


_KINDS: dict[str, type[_Record]] = {
    cls.kind: cls for cls in (RunRecord, TrainRecord, EvalRecord, ThawRecord, MemoryRecord)
}


@dataclass
class RunLog:
    """Every known record of one metrics file, each kind in step order. Where a step repeats
    within a kind (a resume that did not drop the records past its checkpoint) the later line
    wins, as the run that wrote it is the one that carried on. ``runs`` keeps every start and
    resume in file order. ``incomplete_tail``: the last line was cut off and left out."""

    path: Path
    runs: list[RunRecord] = field(default_factory=list)
    train: list[TrainRecord] = field(default_factory=list)
    evals: list[EvalRecord] = field(default_factory=list)
    thaws: list[ThawRecord] = field(default_factory=list)
    memory: list[MemoryRecord] = field(default_factory=list)
    incomplete_tail: bool = False

    @property
    def empty(self) -> bool:
        """True when no step was recorded: no train, eval or memory record."""
        return not (self.train or self.evals or self.memory)

    @property
    def last_step(self) -> int:
        """The highest step any record reached (0 for a run that logged none)."""
        steps = [r.step for kind in (self.runs, self.train, self.evals, self.memory) for r in kind]
        return max(steps, default=0)

    @property
    def best_eval(self) -> EvalRecord | None:
        """The evaluation with the lowest validation loss (the earliest on a tie); None
        when there was none or every loss is NaN."""
        finite = [r for r in self.evals if not math.isnan(r.val_loss)]
        return min(finite, key=lambda r: r.val_loss, default=None)

    @property
    def resumes(self) -> list[RunRecord]:
        """The run records after the first: where the run was resumed."""
        return self.runs[1:]


def read_metrics(path: str | Path) -> RunLog:
    """The records of the metrics file at ``path`` (a file, or a run folder holding
    ``metrics.jsonl``).

    Raises MetricsError when the file cannot be read (missing, a folder without the file,
    too large, not UTF-8) and, located to its line, for a line that is not a JSON object or a
    known record with a missing field or a value of the wrong type.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FILE_NAME
    try:
        data = read_bytes(path, _READ_LIMIT)
    except ReadRefused as exc:
        raise MetricsError(path, exc.reason) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise MetricsError(path, "not UTF-8 text", line) from None
    log = RunLog(path)
    by_kind: dict[str, dict[int, _Record]] = {kind: {} for kind in _KINDS if kind != "run"}
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cut_off = number == len(lines)  # no newline after it: possibly half written
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if cut_off:
                log.incomplete_tail = True
                continue
            raise MetricsError(path, f"not JSON: {exc.msg} (column {exc.colno})", number) from None
        record = _record(obj, path, number)
        if record is None:
            continue
        if isinstance(record, RunRecord):
            log.runs.append(record)
        else:
            by_kind[record.kind][record.step] = record
    log.train = _in_step_order(by_kind["train"])
    log.evals = _in_step_order(by_kind["eval"])
    log.thaws = _in_step_order(by_kind["thaw"])
    log.memory = _in_step_order(by_kind["memory"])
    return log


def _in_step_order(records: dict[int, _Record]) -> list[Any]:
    return [records[step] for step in sorted(records)]


def _record(obj: object, path: Path, line: int) -> _Record | None:
    """The record ``obj`` holds; None for a kind this reader does not know."""
    if not isinstance(obj, dict):
        raise MetricsError(path, f"a record is a JSON object, not {_json_type(obj)}", line)
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise MetricsError(path, 'a record needs a "kind" (a string)', line)
    cls = _KINDS.get(kind)
    if cls is None:
        return None
    values = {}
    record = f'{"an" if kind[0] in "aeiou" else "a"} "{kind}" record'
    for f in fields(cls):
        if f.name not in obj:
            raise MetricsError(path, f'{record} needs "{f.name}"', line)
        value = obj[f.name]
        nullable = _nullable(f.type)
        if value is None and nullable:
            values[f.name] = None
            continue
        expected = _expected(f.type)
        if not _is(value, expected):
            raise MetricsError(
                path,
                f'"{f.name}" of {record} is {_json_type(value)}, not '
                f"{_TYPE_WORDS[expected]}{' or null' if nullable else ''}",
                line,
            )
        values[f.name] = float(value) if expected == _FLOAT else value
    return cls(**values)


def _nullable(annotation: object) -> bool:
    """Whether a field may be null (``X | None``; CUDA-only values are null on the CPU)."""
    return str(annotation).endswith("| None")


def _expected(annotation: object) -> str:
    """The schema type of a field from its annotation (a string: annotations are postponed)."""
    text = str(annotation)
    if text.startswith("int"):
        return _INT
    if text.startswith("float"):
        return _FLOAT
    return _STR


def _is(value: object, expected: str) -> bool:
    if isinstance(value, bool):  # JSON true is no count of anything
        return False
    if expected == _INT:
        return isinstance(value, int)
    if expected == _FLOAT:
        return isinstance(value, int | float)
    return isinstance(value, str)


def _json_type(value: object) -> str:
    """``value``'s type in JSON's words, for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {json.dumps(value)[:40]}"
    return "an array" if isinstance(value, list) else "an object"
