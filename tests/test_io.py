"""The safe reader and writer of users' files (freezegen._io): every way a write could clobber
something, refused; every way a read could block or never end, refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from freezegen import _io
from freezegen._io import ReadRefused, TooLarge, WriteRefused, check_target, read_bytes, write_file
from tests.unprivileged import NOBODY, as_user, dropping, folder_for_user, give_to_user


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# --- writing: what gets written where ---------------------------------------------------------


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    real = tmp_path / "real.py"
    real.write_text("old\n")
    link = tmp_path / "link.py"
    link.symlink_to(real.name)
    write_file(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == real.name
    assert real.read_text() == "new\n"
    assert listing(tmp_path) == ["link.py", "real.py"]


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "link.py"
    link.symlink_to("made.py")
    write_file(link, "new\n")
    assert link.is_symlink() and (tmp_path / "made.py").read_text() == "new\n"


@pytest.mark.parametrize("kept", [0o644, 0o755, 0o600, 0o640])
def test_an_existing_file_keeps_its_mode(tmp_path, kept):
    path = tmp_path / "train.py"
    path.write_text("old\n")
    path.chmod(kept)
    write_file(path, b"new\n")
    assert (mode(path), path.read_bytes()) == (kept, b"new\n")


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        write_file(tmp_path / "train.py", "x = 1\n")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "train.py") == expected


def test_a_missing_folder_is_created(tmp_path):
    write_file(tmp_path / "build" / "tiny" / "train.py", "x = 1\n")
    assert (tmp_path / "build" / "tiny" / "train.py").read_text() == "x = 1\n"


@pytest.mark.skipif(not dropping(), reason="only root may give a file to another user")
def test_root_keeps_the_owner_of_a_file_it_replaces(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("old\n")
    give_to_user(path)
    write_file(path, "new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (NOBODY, NOBODY)


# --- writing: what is refused, and left as it was --------------------------------------------


def refused(path: Path, *, inputs: tuple[Path, ...] = (), folder: Path | None = None) -> str:
    """The reason write_file gives for ``path``; check_target must agree, and neither may
    leave anything behind in ``folder`` (default: the path's)."""
    folder = folder or path.parent
    before = listing(folder)
    with pytest.raises(WriteRefused) as preflight:
        check_target(path, inputs)
    with pytest.raises(WriteRefused) as write:
        write_file(path, "clobbered\n", inputs)
    assert str(write.value) == str(preflight.value)
    assert str(write.value).startswith(f"cannot write {path}: ")
    assert listing(folder) == before, "a refused write left a file behind"
    return write.value.reason


def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.py"
    os.mkfifo(fifo)
    assert refused(fifo) == "it is a named pipe (FIFO), not a regular file"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_symlink_to_a_fifo_is_refused_like_a_device_behind_one(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out.py"
    link.symlink_to(fifo)
    assert refused(link) == "it is a named pipe (FIFO), not a regular file"
    assert link.is_symlink() and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_folder_is_refused_and_keeps_its_files(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("kept\n")
    assert refused(folder) == "it is a folder, not a file"
    assert (folder / "keep.txt").read_text() == "kept\n"


def test_a_read_only_file_is_refused_even_for_root(tmp_path):
    path = tmp_path / "train.py"
    path.write_text("old\n")
    path.chmod(0o444)
    reason = refused(path)
    assert reason == "the file is read-only (mode 0444); make it writable to replace it"
    assert path.read_text() == "old\n" and mode(path) == 0o444


def test_the_commands_own_input_is_refused_under_any_name(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("version: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(spec.name)
    (tmp_path / "sub").mkdir()
    hard = tmp_path / "hard.yaml"
    os.link(spec, hard)
    spellings = [spec, link, tmp_path / "sub" / ".." / "spec.yaml", hard]
    for output in spellings:
        for given in spellings:
            reason = refused(output, inputs=(given,))
            assert (
                reason == f"that is {given}, which this command reads; write the output elsewhere"
            )
    assert spec.read_text() == "version: 1\n" and link.is_symlink()


def test_an_input_that_is_another_file_or_gone_is_no_reason_to_refuse(tmp_path):
    out = tmp_path / "train.py"
    out.write_text("old\n")
    write_file(out, "new\n", inputs=[tmp_path / "spec.yaml", tmp_path / "missing.yaml"])
    assert out.read_text() == "new\n"


def test_a_symlink_loop_is_refused(tmp_path):
    loop = tmp_path / "loop.py"
    loop.symlink_to(loop.name)
    assert refused(loop) == "a symlink loop (too many levels of symbolic links)"


def test_a_folder_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("kept\n")
    reason = refused(blocker / "sub" / "out.py", folder=tmp_path)
    assert reason == f"{blocker / 'sub'} is not a folder (a part of it is a file)"
    assert blocker.read_text() == "kept\n"


def test_check_target_creates_nothing(tmp_path):
    check_target(tmp_path / "build" / "sub" / "train.py")
    assert listing(tmp_path) == []


# --- writing: atomic ---------------------------------------------------------------------------


def test_a_failed_replace_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text("old\n")

    def full_disk(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io.os, "replace", full_disk)
    with pytest.raises(WriteRefused, match="No space left on device"):
        write_file(path, "new\n")
    assert listing(tmp_path) == ["train.py"] and path.read_text() == "old\n"


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text("old\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_io.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_file(path, "new\n")
    assert listing(tmp_path) == ["train.py"] and path.read_text() == "old\n"


# --- as a user that modes bind -----------------------------------------------------------------


def _try_write(path: str) -> str:
    try:
        write_file(path, "new\n")
    except WriteRefused as exc:
        return str(exc)
    return "written"


def test_as_a_user_a_read_only_folder_and_file_are_refused():
    with folder_for_user() as folder:
        locked = folder / "locked"
        locked.mkdir()
        (locked / "old.py").write_text("old\n")
        read_only = folder / "read_only.py"
        read_only.write_text("old\n")
        read_only.chmod(0o444)
        writable = folder / "writable.py"
        writable.write_text("old\n")
        give_to_user(locked, locked / "old.py", read_only, writable)
        locked.chmod(0o555)

        assert as_user(_try_write, str(locked / "new.py")) == (
            f"cannot write {locked / 'new.py'}: the folder {locked} is read-only "
            "(no permission to create files in it)"
        )
        assert as_user(_try_write, str(locked / "old.py")).endswith(
            f"the folder {locked} is read-only (no permission to create files in it)"
        )
        assert as_user(_try_write, str(read_only)).endswith(
            "the file is read-only (mode 0444); make it writable to replace it"
        )
        assert as_user(_try_write, str(writable)) == "written"
        assert listing(locked) == ["old.py"] and (locked / "old.py").read_text() == "old\n"
        assert read_only.read_text() == "old\n" and writable.read_text() == "new\n"


# --- reading -----------------------------------------------------------------------------------


def test_reads_a_regular_file_up_to_the_limit(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"0123456789")
    assert read_bytes(path, 10) == b"0123456789"
    with pytest.raises(TooLarge) as large:
        read_bytes(path, 9)
    assert (large.value.reason, large.value.limit) == ("file is larger than 9 bytes", 9)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "x.freezegen.yaml"
    os.mkfifo(fifo)  # nobody writes to it: an ordinary open would wait forever
    with pytest.raises(ReadRefused) as refusal:
        read_bytes(fifo, 100)
    assert (
        str(refusal.value) == f"cannot read {fifo}: it is a named pipe (FIFO), not a regular file"
    )


def test_a_symlink_to_a_device_is_refused_without_reading(tmp_path):
    link = tmp_path / "train.py"
    link.symlink_to("/dev/zero")  # an ordinary read would never end
    with pytest.raises(ReadRefused, match="it is a device, not a regular file"):
        read_bytes(link, 1 << 30)


def test_a_folder_a_loop_and_a_missing_file_are_refused(tmp_path):
    loop = tmp_path / "loop.py"
    loop.symlink_to(loop.name)
    reasons = {}
    for path in (tmp_path, loop, tmp_path / "missing.py"):
        with pytest.raises(ReadRefused) as refusal:
            read_bytes(path, 100)
        reasons[path] = refusal.value.reason
    assert reasons == {
        tmp_path: "it is a folder, not a file",
        loop: "a symlink loop (too many levels of symbolic links)",
        tmp_path / "missing.py": "No such file or directory",
    }


def _try_read(path: str) -> str:
    try:
        return read_bytes(path, 100).decode()
    except ReadRefused as exc:
        return exc.reason


def test_as_a_user_an_unreadable_file_is_refused():
    with folder_for_user() as folder:
        secret = folder / "secret.py"
        secret.write_text("x = 1\n")
        secret.chmod(0o000)
        readable = folder / "readable.py"
        readable.write_text("y = 2\n")
        give_to_user(secret, readable)
        assert as_user(_try_read, str(secret)) == "Permission denied"
        assert as_user(_try_read, str(readable)) == "y = 2\n"


def test_describe_size():
    assert [_io.describe_size(n) for n in (4 << 20, 512 << 10, 1000)] == [
        "4 MiB",
        "512 KiB",
        "1000 bytes",
    ]
