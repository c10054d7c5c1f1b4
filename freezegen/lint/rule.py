"""The shape every lint rule has: a stable code, a message, examples, and a check."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.lint.fix import SpecFix
from freezegen.spec.edit import Edit

if TYPE_CHECKING:
    from freezegen.lint.context import LintContext


class Rule:
    """Base class of spec rules. Subclasses live one per module in ``freezegen.lint.rules``.

    ``valid`` and ``invalid`` are whole example specs; the test suite checks that every invalid
    example raises this rule's code and no valid one does, so they double as documentation.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    severity: ClassVar[Severity] = Severity.ERROR
    default_enabled: ClassVar[bool] = True
    """False: runs only when selected by a prefix more specific than "FG" (like FG203)."""
    valid: ClassVar[tuple[str, ...]] = ()
    invalid: ClassVar[tuple[str, ...]] = ()

    def check(self, ctx: LintContext) -> Iterator[Diagnostic]:
        """Yield this rule's findings for one loaded, schema-valid spec."""
        return iter(())

    def at(
        self,
        ctx: LintContext,
        loc: tuple[str | int, ...],
        message: str,
        *,
        fix: str | None = None,
        key: bool = False,
        severity: Severity | None = None,
        edits: Sequence[Edit] = (),
        unsafe: bool = False,
    ) -> Diagnostic:
        """Return a finding of this rule located at ``loc`` in the spec. ``edits``: the spec
        changes that remove it, for ``lint --fix`` (``unsafe``: they change the training maths,
        so only ``--unsafe-fixes`` applies them; see freezegen.lint.fix)."""
        line, col = ctx.document.locate(loc, key=key)
        found = Diagnostic(
            self.code, message, ctx.path, line, col, severity=severity or self.severity, fix=fix
        )
        if edits:
            ctx.fixes[found] = SpecFix(tuple(edits), safe=not unsafe)
        return found


class SchemaRule(Rule):
    """A FG0xx code: emitted by the loader, listed here so it is documented and selectable."""

    always_on: ClassVar[bool] = True
