"""Which files a command looks at: the paths given, and matching files under given folders."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# Tool and environment folders a project never wants scanned.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox"}
)


def expand_paths(paths: Iterable[str | Path], wanted: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield files as given (whatever their name) and the ``wanted`` files under folders, each
    folder's in sorted order; raise FileNotFoundError for a path that does not exist."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(_walk(path, wanted))
        elif path.exists() or path.is_symlink():
            yield path
        else:
            raise FileNotFoundError(str(path))


def _walk(folder: Path, wanted: Callable[[Path], bool]) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            path = Path(root, name)
            if wanted(path):
                yield path
