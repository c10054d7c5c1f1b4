"""Check Python training scripts (FG5xx): one parse per file, every rule in one pass."""

from freezegen.check.api import CheckReport, check_file, check_paths
from freezegen.check.engine import FileResult, check_source

__all__ = ["CheckReport", "FileResult", "check_file", "check_paths", "check_source"]
