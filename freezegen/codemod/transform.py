"""The shape of a transform: a function from a :class:`Script` to a new module.

A transform returns None when it has nothing to do (the option is off, or the script already
does it: that is what makes the codemod idempotent), raises CannotAct when it cannot act, and
appends to ``notes`` what the user should know about a choice it made.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from freezegen.codemod.options import CodemodOptions
from freezegen.codemod.script import Script

Notes = list[tuple[cst.CSTNode | None, str]]
Transform = Callable[[Script, CodemodOptions, Notes], cst.Module | None]
