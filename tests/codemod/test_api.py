"""codemod reads only regular files, in their own encoding, and --write writes back safely:
the BOM and a PEP 263 encoding kept, through symlinks, the mode kept, read-only refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from freezegen.codemod import CodemodOptions, codemod_paths
from tests.unprivileged import as_user, folder_for_user, give_to_user

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codemod"
SOURCE = (FIXTURES / "flat_loop.in.py").read_text(encoding="utf-8")
BF16 = CodemodOptions(precision="bf16")
LATIN1_HEADER = "# -*- coding: latin-1 -*-\n# café\n"


def problems(report) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for message in report.problems:
        found.setdefault(Path(message.path).name, []).append(message.text)
    return found


def expected(source: str) -> str:
    """What --write makes of ``source`` (computed the way the codemod does, from text)."""
    from freezegen.codemod import codemod_source

    new = codemod_source(source, BF16).new_source
    assert new is not None and new != source
    return new


def test_write_keeps_a_bom_and_a_latin1_encoding(tmp_path):
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + SOURCE.encode("utf-8"))
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes((LATIN1_HEADER + SOURCE).encode("latin-1"))
    report = codemod_paths([bom, latin1], BF16, write=True)
    assert problems(report) == {} and len(report.changed) == 2
    assert bom.read_bytes() == b"\xef\xbb\xbf" + expected(SOURCE).encode("utf-8")
    assert latin1.read_bytes() == expected(LATIN1_HEADER + SOURCE).encode("latin-1")


def test_a_rewrite_the_encoding_cannot_hold_is_refused_in_every_mode(tmp_path):
    latin1 = tmp_path / "latin1.py"
    data = (LATIN1_HEADER + SOURCE).encode("latin-1")
    latin1.write_bytes(data)
    cyrillic = CodemodOptions(activation_checkpointing="модель")
    for write in (False, True):
        report = codemod_paths([latin1], cyrillic, write=write)
        assert report.changed == []
        ((message,),) = problems(report).values()
        assert message.startswith("cannot rewrite: line ")
        assert message.endswith(
            "would hold 'м' (U+043C), which the file's encoding (iso-8859-1) cannot represent; "
            "the file is unchanged"
        )
    assert latin1.read_bytes() == data


def test_write_goes_through_a_symlink_and_keeps_the_mode(tmp_path):
    script = tmp_path / "real.py"
    script.write_text(SOURCE, encoding="utf-8")
    script.chmod(0o755)
    link = tmp_path / "train.py"
    link.symlink_to(script.name)
    report = codemod_paths([link], BF16, write=True)
    assert problems(report) == {} and len(report.changed) == 1
    assert link.is_symlink() and script.read_text(encoding="utf-8") == expected(SOURCE)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_a_read_only_file_is_a_problem_and_the_run_goes_on(tmp_path):
    locked = tmp_path / "locked.py"
    locked.write_text(SOURCE, encoding="utf-8")
    locked.chmod(0o444)
    other = tmp_path / "other.py"
    other.write_text(SOURCE, encoding="utf-8")
    report = codemod_paths([tmp_path], BF16, write=True)
    assert problems(report) == {
        "locked.py": [
            "cannot write: the file is read-only (mode 0444); make it writable to replace it; "
            "the file is unchanged"
        ]
    }
    assert [Path(r.path).name for r in report.changed] == ["other.py"]
    assert locked.read_text(encoding="utf-8") == SOURCE
    assert other.read_text(encoding="utf-8") == expected(SOURCE)


def _write_all(folder: str) -> tuple[dict[str, list[str]], int]:
    report = codemod_paths([folder], BF16, write=True)
    return problems(report), len(report.changed)


def test_as_a_user_write_in_a_read_only_folder_reports_each_file(tmp_path):
    warm = tmp_path / "warm.py"  # as root first: libcst and the transforms load before the fork
    warm.write_text(SOURCE, encoding="utf-8")
    codemod_paths([warm], BF16, write=True)
    with folder_for_user() as folder:
        locked = folder / "locked"
        locked.mkdir()
        for name in ("a.py", "b.py"):
            (locked / name).write_text(SOURCE, encoding="utf-8")
        give_to_user(locked, *locked.iterdir())
        locked.chmod(0o555)
        found, changed = as_user(_write_all, str(locked))
        reason = (
            f"cannot write: the folder {locked} is read-only (no permission to create files "
            "in it); the file is unchanged"
        )
        assert (found, changed) == ({"a.py": [reason], "b.py": [reason]}, 0)
        assert all(p.read_text(encoding="utf-8") == SOURCE for p in locked.iterdir())


def test_only_regular_files_are_read(tmp_path):
    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "loop.py").symlink_to("loop.py")
    named = [tmp_path / name for name in ("fifo.py", "zero.py", "loop.py")]
    assert problems(codemod_paths(named, BF16)) == {
        "fifo.py": ["cannot read: it is a named pipe (FIFO), not a regular file"],
        "zero.py": ["cannot read: it is a device, not a regular file"],
        "loop.py": ["cannot read: a symlink loop (too many levels of symbolic links)"],
    }


def test_a_file_that_does_not_decode_is_a_located_problem(tmp_path):
    undeclared = tmp_path / "undeclared.py"
    undeclared.write_bytes(b"import torch\n# caf\xe9\nloss.backward()\n")
    unknown = tmp_path / "unknown.py"
    unknown.write_bytes(b"# coding: no-such-codec\nloss.backward()\n")
    report = codemod_paths([undeclared, unknown], BF16)
    assert [str(m) for m in report.problems] == [
        f"{undeclared}:2:1: cannot decode: invalid continuation byte (utf-8); "
        "save it as UTF-8 or declare its encoding (PEP 263)",
        f"{unknown}:1:1: cannot decode: unknown encoding: no-such-codec; "
        "save it as UTF-8 or declare its encoding (PEP 263)",
    ]
