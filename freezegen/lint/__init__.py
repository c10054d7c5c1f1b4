"""Lint specs: schema problems (FG0xx) and consistency rules (FG1xx), located and selectable.

Options, selection and suppression are shared with ``freezegen check``
(:mod:`freezegen.rules`); ``LintOptions`` is their name in this package's API.
"""

from freezegen.lint.engine import LintReport, lint_paths, lint_text
from freezegen.rules import ConfigError, Overrides
from freezegen.rules import RuleOptions as LintOptions

__all__ = ["ConfigError", "LintOptions", "LintReport", "Overrides", "lint_paths", "lint_text"]
