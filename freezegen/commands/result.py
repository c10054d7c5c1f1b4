"""What a command hands back to the CLI: output in order, the exit status, files written."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

Stream = Literal["stdout", "stderr"]
OptionsT = TypeVar("OptionsT")


class UsageError(Exception):
    """A mistake in what the user asked for: reported on stderr with exit status 2.

    ``prefixed``: print as ``freezegen: error: TEXT``; False for text that is already formatted
    (located diagnostics of a spec that does not load).
    """

    def __init__(self, text: str, *, prefixed: bool = True) -> None:
        super().__init__(text)
        self.text = text
        self.prefixed = prefixed


@dataclass
class CommandResult:
    """Exit status 0 (clean), 1 (findings, changes, out of date) or 2 (usage error); the
    output to print, in order; and the files the command wrote."""

    exit_code: int = 0
    output: list[tuple[Stream, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def out(self, text: str) -> None:
        """Queue ``text`` for stdout, as is."""
        self.output.append(("stdout", text))

    def err(self, line: str) -> None:
        """Queue one line for stderr."""
        self.output.append(("stderr", line + "\n"))

    def text(self, stream: Stream) -> str:
        """Everything queued for ``stream``, joined."""
        return "".join(text for where, text in self.output if where == stream)

    @classmethod
    def usage_error(cls, error: UsageError) -> CommandResult:
        """The result of a run stopped by ``error``: its text on stderr, exit status 2."""
        result = cls(exit_code=2)
        if error.prefixed:
            result.err(f"freezegen: error: {error.text}")
        else:
            result.output.append(("stderr", error.text.rstrip("\n") + "\n"))
        return result


def reports_usage_errors(
    run: Callable[[OptionsT], CommandResult],
) -> Callable[[OptionsT], CommandResult]:
    """Wrap a command's ``run`` so that a UsageError raised inside comes back as its result."""

    @functools.wraps(run)
    def wrapper(options: OptionsT) -> CommandResult:
        try:
            return run(options)
        except UsageError as exc:
            return CommandResult.usage_error(exc)

    return wrapper
