"""Generate a runnable training script from a spec (docs/architecture.md, "The generated script").

Public surface: :func:`render_script` (spec -> script text), :func:`check_script` (is the file on
disk what the spec renders?) and :class:`GenerateError` (a spec the script cannot run).
"""

from __future__ import annotations

from pathlib import Path

from freezegen.generate.errors import GenerateError
from freezegen.generate.render import render_script
from freezegen.spec.models import Spec

__all__ = ["GenerateError", "check_script", "render_script"]


def check_script(spec: Spec, spec_path: str | Path, script: str | Path) -> bool:
    """Return True when ``script`` holds exactly what ``spec`` renders for its location.

    A missing or unreadable file is out of date (False); raises GenerateError like render_script.
    """
    script = Path(script)
    expected = render_script(spec, spec_path, script.parent)
    try:
        return script.read_text(encoding="utf-8") == expected
    except (OSError, UnicodeDecodeError):
        return False
