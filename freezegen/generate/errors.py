"""The error of a spec the generated script cannot run."""

from __future__ import annotations


class GenerateError(Exception):
    """The spec asks for something the generated script cannot do; the message says what, and
    ``loc`` (a path of keys, as lint's diagnostics have) names the setting when one is to blame."""

    def __init__(self, message: str, loc: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.loc = loc
