"""Rewrite existing training scripts with libcst: freezing, AMP, accumulation, activation
checkpointing and a trainable-only optimizer, keeping every other byte and safe to run twice."""

from freezegen.codemod.api import CodemodReport, codemod_file, codemod_paths, unified_diff
from freezegen.codemod.engine import CodemodResult, Message, codemod_source
from freezegen.codemod.options import CodemodOptions, OptionsError, options_from_spec, validate

__all__ = [
    "CodemodOptions",
    "CodemodReport",
    "CodemodResult",
    "Message",
    "OptionsError",
    "codemod_file",
    "codemod_paths",
    "codemod_source",
    "options_from_spec",
    "unified_diff",
    "validate",
]
