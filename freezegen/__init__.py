"""freezegen: lint, memory-estimate and generate PyTorch fine-tuning runs from a YAML spec.

Importing the package is cheap; the API lives in submodules (``freezegen.spec``,
``freezegen.lint``) so a pre-commit hook never pays for torch.
"""

from freezegen._version import __version__
from freezegen.diagnostics import Diagnostic, Severity, SpecError

__all__ = ["Diagnostic", "Severity", "SpecError", "__version__"]
