"""Render a spec's training script from the Jinja2 templates.

Templates are found next to the installed package (``freezegen/templates``, where the wheel puts
them) or, in a source checkout, in the repository's ``templates/`` folder. A folder named by
``FREEZEGEN_TEMPLATES`` comes first, so a user can override one template without copying all:
the skeleton ``train.py.j2`` or a single part, by its path (``parts/step/lr-cosine.py.j2``).
Which parts a script is made of is :mod:`freezegen.generate.recipe`'s decision.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from freezegen.generate.context import build_context

if TYPE_CHECKING:
    import jinja2

    from freezegen.spec.models import Spec

TEMPLATE = "train.py.j2"
_PACKAGE = Path(__file__).resolve().parent.parent


def template_dirs() -> list[Path]:
    """Return the folders searched for templates, first match wins."""
    dirs = []
    override = os.environ.get("FREEZEGEN_TEMPLATES")
    if override:
        dirs.append(Path(override))
    dirs += [_PACKAGE / "templates", _PACKAGE.parent / "templates"]
    return [d for d in dirs if d.is_dir()]


@lru_cache(maxsize=4)
def _environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Python source, not HTML: every value arrives pre-rendered as a literal
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_script(spec: Spec, spec_path: str | Path, script_dir: str | Path | None = None) -> str:
    """Return the training script for ``spec`` (loaded from ``spec_path``) as text.

    ``script_dir`` is the folder the script will be written to (default: the current one); the
    spec's paths are written relative to it. The text is deterministic for a given spec and
    location. Raises :class:`~freezegen.generate.GenerateError` when the spec asks for something
    the script cannot do.
    """
    script_dir = Path.cwd() if script_dir is None else Path(script_dir)
    context = build_context(spec, Path(spec_path), script_dir)
    template = _environment(tuple(template_dirs())).get_template(TEMPLATE)
    return template.render(**context)
