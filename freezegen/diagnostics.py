"""Located findings, and the one exception type for a user's mistakes.

Everything freezegen reports about a user's input is a :class:`Diagnostic`: a stable code, a
message, a severity and the file/line/column of the node it is about. Loading, linting and
(later) estimating all speak this type, so every reporter can print every finding.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    """How bad a finding is: ``error`` fails ``lint``, ``warning`` only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a file, 1-based line and column (0 when the whole file is meant)."""

    code: str
    message: str
    path: str
    line: int
    col: int
    severity: Severity = Severity.ERROR
    fix: str | None = None
    """A human-readable suggestion (``did you mean 'x'?`` or the knob that fixes it)."""
    end_line: int | None = None
    end_col: int | None = None

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.col,
            "end_line": self.end_line,
            "end_column": self.end_col,
            "fix": self.fix,
        }


@dataclass(eq=False)
class SpecError(Exception):
    """A spec could not be loaded; ``diagnostics`` holds every problem found, located."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(
            f"{d.path}:{d.line}:{d.col}: {d.code} {d.message}" for d in self.diagnostics
        )


def count_by_severity(diagnostics: Iterable[Diagnostic]) -> dict[Severity, int]:
    """Return how many findings there are of each severity (both keys always present)."""
    counts = dict.fromkeys(Severity, 0)
    for d in diagnostics:
        counts[d.severity] += 1
    return counts
