"""What ``lint`` (spec rules) and ``check`` (script rules) share: options, registry, suppression.

Neither tool imports the other; both build on this package. It imports nothing heavy, so the
lint path stays fast.
"""

from freezegen.rules.options import ConfigError, Overrides, RuleOptions
from freezegen.rules.registry import RuleRegistry
from freezegen.rules.suppression import source_lines, suppresses

__all__ = ["ConfigError", "Overrides", "RuleOptions", "RuleRegistry", "source_lines", "suppresses"]
