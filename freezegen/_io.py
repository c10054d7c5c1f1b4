"""A user's files, read and written safely: only regular files, bounded, atomic, never clobbered.

Reading opens without blocking and refuses anything but a regular file, so a FIFO, a device or
a folder named like a spec or a script is an error instead of a hang or an endless read; it
never reads more than the caller's limit. Writing goes through a temporary file in the target's
folder and os.replace, so a reader sees the old file or the new one, never half of one; it
writes through symlinks to the file they name, keeps the file's mode (and owner, when it may),
and refuses devices, FIFOs, folders, read-only files and the command's own inputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class FileRefused(Exception):
    """A file freezegen will not read or write; ``reason`` says why in a user's words."""

    verb = "use"

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot {self.verb} {path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ReadRefused(FileRefused):
    """The file does not exist, cannot be opened, is not a regular file, or is too large."""

    verb = "read"


class TooLarge(ReadRefused):
    """The file holds more than ``limit`` bytes."""

    def __init__(self, path: str | Path, limit: int) -> None:
        super().__init__(path, f"file is larger than {describe_size(limit)}")
        self.limit = limit


class WriteRefused(FileRefused):
    """The target must not be replaced (not a regular file, read-only, an input), or its
    folder cannot take a new file; nothing was written."""

    verb = "write"


def describe_size(size: int) -> str:
    """``size`` in words for a message: "4 MiB", "512 KiB", "10 bytes"."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The contents of the regular file at ``path`` (symlinks followed), at most ``limit`` bytes.

    Raises ReadRefused when the path is missing, unreadable, a symlink loop, or not a regular
    file (a FIFO, a device, a folder: refused before it could block or never end), and
    TooLarge when it holds more than ``limit`` bytes (read stops at ``limit`` + 1).
    """
    try:
        _refuse_special(path, os.stat(path), ReadRefused)
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    except OSError as exc:
        raise ReadRefused(path, os_reason(exc)) from None
    try:
        # checked again on what was opened: the path may have changed since the stat
        _refuse_special(path, os.fstat(fd), ReadRefused)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ReadRefused(path, os_reason(exc)) from None
    finally:
        os.close(fd)
    if size > limit:
        raise TooLarge(path, limit)
    return b"".join(chunks)


def os_reason(exc: OSError) -> str:
    """The system's words for ``exc`` ("No such file or directory"), naming a symlink loop."""
    if exc.errno == errno.ELOOP:
        return "a symlink loop (too many levels of symbolic links)"
    return exc.strerror or type(exc).__name__


def check_target(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Raise WriteRefused unless :func:`write_file` may replace or create ``path``.

    Refused: a path that exists and is not a regular file (a folder, a FIFO, a device), a file
    nobody may write (no write bit, even for root) or the user may not write, a symlink loop,
    one of ``inputs`` (the same file under any name), and a folder the user may not write in
    or that cannot be created (a part of it is a file). Creates nothing.
    """
    _target(Path(path), inputs, create=False)


def write_file(path: str | Path, content: str | bytes, inputs: Iterable[str | Path] = ()) -> None:
    """Replace (or create) the file at ``path`` with ``content`` atomically and safely.

    Text is written as UTF-8 with \\n newlines. A symlink is written through: the file it names
    gets the content and the link stays. An existing file keeps its mode (and its owner, when
    the user may set it); a new one gets the mode the umask gives. The folder is created when
    missing. ``inputs``: files the command read, which it must never overwrite.

    Raises WriteRefused, with the file untouched and no temporary file left behind, for every
    case :func:`check_target` refuses and when the system fails the write (a full disk, a
    read-only folder).
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    real, current = _target(Path(path), inputs, create=True)
    folder = real.parent
    fd, tmp = _create_temp(real, path)
    try:
        try:
            if current is not None:
                _copy_owner_and_mode(fd, current)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteRefused(path, os_reason(exc)) from None
        raise
    _sync_folder(folder)


def _target(
    path: Path, inputs: Iterable[str | Path], *, create: bool
) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` replaces (symlinks resolved) and its stat, None when it
    does not exist yet (its folder then made with ``create``); raises WriteRefused as
    check_target says."""
    real = Path(os.path.realpath(path))
    try:
        current: os.stat_result | None = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        current = None
    except OSError as exc:
        raise WriteRefused(path, os_reason(exc)) from None
    if current is None:
        _folder_for_new_file(path, real.parent, create=create)
        return real, None
    _refuse_special(path, current, WriteRefused)
    for given in inputs:
        try:
            same = os.path.samefile(given, real)
        except OSError:
            continue  # an input that is gone cannot be overwritten
        if same:
            raise WriteRefused(
                path, f"that is {given}, which this command reads; write the output elsewhere"
            )
    if not current.st_mode & _WRITE_BITS or not os.access(real, os.W_OK):
        mode = stat.S_IMODE(current.st_mode)
        raise WriteRefused(
            path, f"the file is read-only (mode {mode:04o}); make it writable to replace it"
        )
    _refuse_read_only_folder(path, real.parent)
    return real, current


def _folder_for_new_file(path: str | Path, folder: Path, *, create: bool) -> None:
    """Raise WriteRefused unless a new file can go in ``folder``: with ``create`` the folder
    (and its parents) is made; without, the closest part of it that exists must be a folder
    the user may write in."""
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise WriteRefused(path, f"{folder} is not a folder (a part of it is a file)") from None
        except OSError as exc:
            reason = f"cannot create the folder {folder}: {os_reason(exc)}"
            raise WriteRefused(path, reason) from None
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WriteRefused(path, f"{folder} is not a folder (a part of it is a file)")
    _refuse_read_only_folder(path, existing)


def _refuse_read_only_folder(path: str | Path, folder: Path) -> None:
    """Raise WriteRefused when the user may not create a file in ``folder`` (the temporary
    file the write goes through lives there)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteRefused(
            path, f"the folder {folder} is read-only (no permission to create files in it)"
        )


def _refuse_special(path: str | Path, st: os.stat_result, error: type[FileRefused]) -> None:
    """Raise ``error`` unless ``st`` is a regular file."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise error(path, "it is a folder, not a file")
    if stat.S_ISFIFO(st.st_mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = "a device"
    elif stat.S_ISSOCK(st.st_mode):
        kind = "a socket"
    else:
        kind = "a special file"
    raise error(path, f"it is {kind}, not a regular file")


def _create_temp(real: Path, shown: str | Path) -> tuple[int, str]:
    """A new file next to ``real`` that only we opened. Created with mode 0666 so that the
    umask (and a default ACL) give it the mode any new file there gets; mkstemp's 0600 would
    stick to a file that did not exist before."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
    for _ in range(100):
        tmp = str(real.parent / f".{real.name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            reason = os_reason(exc)
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                reason = f"the folder {real.parent} is read-only ({reason})"
            raise WriteRefused(shown, reason) from None
    raise WriteRefused(shown, f"cannot create a temporary file in {real.parent}")


def _copy_owner_and_mode(fd: int, current: os.stat_result) -> None:
    """Give the new file the replaced file's owner (best effort: only root may give a file
    away) and then its mode (chown clears set-id bits, so the mode comes second)."""
    if hasattr(os, "fchown"):
        with contextlib.suppress(OSError):
            os.fchown(fd, current.st_uid, current.st_gid)
    os.fchmod(fd, stat.S_IMODE(current.st_mode))


def _sync_folder(folder: Path) -> None:
    """Make the rename durable; a system without folder fsync (Windows) only loses that."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
