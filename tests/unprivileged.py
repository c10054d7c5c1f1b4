"""Running a piece of a test as a user that file modes apply to.

Root ignores a file's missing write bit and a read-only folder, so a test of "refuses a
read-only folder" run as root proves nothing. ``as_user`` runs a function in a forked child
that dropped to uid/gid 65534 (nobody) when the tests run as root; it runs in this process when
they do not (modes already apply). A fork rather than a new interpreter: the interpreter of the
tests may live where nobody cannot read it (a pyenv under /root), and what the function needs
is imported already. ``folder_for_user`` makes a folder that user owns, outside pytest's
tmp_path (whose parents only root may enter).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534


def dropping() -> bool:
    """True when the tests run as root, so ``as_user`` runs as nobody."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


@contextmanager
def folder_for_user() -> Iterator[Path]:
    """A fresh folder the user ``as_user`` runs as owns; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="freezegen-unprivileged-"))
    try:
        if dropping():
            os.chown(folder, NOBODY, NOBODY)
        yield folder
    finally:
        for path in (folder, *folder.rglob("*")):  # read-only folders would stop rmtree
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder)


def give_to_user(*paths: Path) -> None:
    """Make ``paths`` (created by the test as root) belong to the user ``as_user`` runs as."""
    if dropping():
        for path in paths:
            os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


def as_user(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` run as a user whom file modes bind; its return value must pickle.

    An exception in it fails the test with the child's traceback. Skips when the tests run as
    root and cannot drop privileges (a container without CAP_SETUID).
    """
    if not dropping():
        return function(*args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 0
        try:
            os.close(read_end)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            except PermissionError as exc:
                payload = ("skip", f"cannot drop root privileges: {exc}")
            else:
                try:
                    payload = ("ok", function(*args))
                except BaseException:
                    payload = ("error", traceback.format_exc())
            with os.fdopen(write_end, "wb") as fh:
                pickle.dump(payload, fh)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    if not data:
        pytest.fail("the unprivileged child died without an answer")
    kind, value = pickle.loads(data)
    if kind == "skip":
        pytest.skip(value)
    if kind == "error":
        pytest.fail(f"as uid {NOBODY}:\n{value}")
    return value
