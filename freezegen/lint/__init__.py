"""Lint specs: schema problems (FG0xx) and consistency rules (FG1xx), located and selectable."""

from freezegen.lint.config import ConfigError, LintOptions, Overrides
from freezegen.lint.engine import LintReport, lint_paths, lint_text

__all__ = ["ConfigError", "LintOptions", "LintReport", "Overrides", "lint_paths", "lint_text"]
