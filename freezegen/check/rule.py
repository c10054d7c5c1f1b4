"""The shape every check rule has: a stable code, a message, examples, and a visitor."""

from __future__ import annotations

from typing import ClassVar

import libcst as cst

from freezegen.check.context import FileContext, Finding, Fix
from freezegen.check.outline import Outline
from freezegen.diagnostics import Severity


class CheckRule(cst.BatchableCSTVisitor):
    """Base class of FG5xx rules. Subclasses live one per module in ``freezegen.check.rules``.

    A rule is a libcst visitor instantiated once per file; the engine runs every selected rule
    in one batched pass over the tree. ``valid`` and ``invalid`` are whole example scripts that
    the test suite runs: every invalid one raises this rule's code, no valid one does.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    default_enabled: ClassVar[bool] = True
    needles: ClassVar[tuple[bytes, ...]] = ()
    """The rule can only fire on a file containing all of these strings (see ``wanted``)."""
    fixable: ClassVar[bool] = False
    valid: ClassVar[tuple[str, ...]] = ()
    invalid: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def wanted(cls, data: bytes) -> bool:
        """False when this rule cannot fire on a file with these bytes: the text prefilter.

        A file that no selected rule wants is not parsed at all; that is what keeps a run over
        a whole repository (or the transformers package) in seconds.
        """
        return all(n in data for n in cls.needles)

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        """False when this rule cannot fire on the file that ``outline`` describes: the pre-pass
        that keeps libcst away from files no rule can fire on (see :mod:`.outline`). It must
        never be False where the rule would report; a rule that cannot tell says True.
        """
        return True

    def __init__(self, ctx: FileContext) -> None:
        super().__init__()
        self.ctx = ctx

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        help: str | None = None,
        fix: Fix | None = None,
        safe: bool = True,
    ) -> None:
        """Record a finding of this rule about ``node`` (located by the engine).

        ``safe`` False marks a fix that is right only under an assumption the file does not
        prove: ``--fix`` leaves it and ``--unsafe-fixes`` applies it, and ``help`` should say
        what the assumption is.
        """
        finding = Finding(self.code, self.severity, node, message, help, fix, safe)
        self.ctx.findings.append(finding)


class LoopRule(CheckRule):
    """A rule about training loops: :meth:`check_loop` runs once for every ``for`` and
    ``while`` loop of the file (nested ones included)."""

    def visit_For(self, node: cst.For) -> None:
        self.check_loop(node)

    def visit_While(self, node: cst.While) -> None:
        self.check_loop(node)

    def check_loop(self, loop: cst.For | cst.While) -> None:
        raise NotImplementedError
