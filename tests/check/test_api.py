"""check reads only regular files, bounded, and --fix writes in place safely: through symlinks,
keeping the mode and the file's encoding, refusing read-only files and folders per file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from freezegen.check import check_paths
from freezegen.pysource import MAX_SOURCE_BYTES
from freezegen.rules import Overrides
from tests.unprivileged import as_user, folder_for_user, give_to_user

SCRIPT = 'import torch\n\n# café\nstate = torch.load("ckpt.pt")\nmodel.load_state_dict(state)\n'
FIXED = SCRIPT.replace('"ckpt.pt")', '"ckpt.pt", weights_only=True)')
LATIN1 = "# -*- coding: latin-1 -*-\n" + SCRIPT
NO_CONFIG = Overrides(use_config=False)


def check(*paths: Path, fix: bool = False) -> dict[str, list[str]]:
    """Each file's findings as "CODE message", by file name."""
    report = check_paths(paths, NO_CONFIG, fix=fix)
    found: dict[str, list[str]] = {}
    for d in report.diagnostics:
        found.setdefault(Path(d.path).name, []).append(f"{d.code} {d.message}")
    return found


def test_fix_keeps_the_mode_and_writes_through_a_symlink(tmp_path):
    script = tmp_path / "real.py"
    script.write_text(SCRIPT, encoding="utf-8")
    script.chmod(0o755)
    link = tmp_path / "train.py"
    link.symlink_to(script.name)
    assert check(link, fix=True) == {}
    assert link.is_symlink() and script.read_text(encoding="utf-8") == FIXED
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_fix_writes_a_latin1_file_in_latin1_and_keeps_a_bom(tmp_path):
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes(LATIN1.encode("latin-1"))
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + SCRIPT.encode("utf-8"))
    report = check_paths([latin1, bom], NO_CONFIG, fix=True)
    assert (report.diagnostics, report.fixes) == ([], 2)
    expected = "# -*- coding: latin-1 -*-\n" + FIXED
    assert latin1.read_bytes() == expected.encode("latin-1")
    assert bom.read_bytes() == b"\xef\xbb\xbf" + FIXED.encode("utf-8")


def test_a_read_only_file_is_a_finding_and_the_run_goes_on(tmp_path):
    locked = tmp_path / "locked.py"
    locked.write_text(SCRIPT, encoding="utf-8")
    locked.chmod(0o444)
    other = tmp_path / "other.py"
    other.write_text(SCRIPT, encoding="utf-8")
    found = check(tmp_path, fix=True)
    assert found == {
        "locked.py": [
            "FG500 cannot write the fixes: the file is read-only (mode 0444); make it "
            "writable to replace it",
            found["locked.py"][1],
        ]
    }
    assert found["locked.py"][1].startswith("FG507 torch.load() without weights_only")
    assert locked.read_text(encoding="utf-8") == SCRIPT
    assert other.read_text(encoding="utf-8") == FIXED


def _fix_all(folder: str) -> tuple[dict[str, list[str]], int]:
    report = check_paths([folder], NO_CONFIG, fix=True)
    found: dict[str, list[str]] = {}
    for d in report.diagnostics:
        found.setdefault(Path(d.path).name, []).append(d.code)
    return found, report.files


def test_as_a_user_fix_in_a_read_only_folder_reports_each_file(tmp_path):
    warm = tmp_path / "warm.py"  # as root first: libcst and the rules are imported before the fork
    warm.write_text(SCRIPT, encoding="utf-8")
    check(warm, fix=True)
    with folder_for_user() as folder:
        locked = folder / "locked"
        locked.mkdir()
        for name in ("a.py", "b.py"):
            (locked / name).write_text(SCRIPT, encoding="utf-8")
        give_to_user(locked, *locked.iterdir())
        locked.chmod(0o555)
        found, files = as_user(_fix_all, str(locked))
        assert files == 2
        assert found == {"a.py": ["FG500", "FG507"], "b.py": ["FG500", "FG507"]}
        assert all(p.read_text(encoding="utf-8") == SCRIPT for p in locked.iterdir())


def test_only_regular_files_are_read_and_never_past_the_limit(tmp_path):
    os.mkfifo(tmp_path / "fifo.py")  # an ordinary open would wait for a writer forever
    (tmp_path / "zero.py").symlink_to("/dev/zero")  # an ordinary read would never end
    (tmp_path / "loop.py").symlink_to("loop.py")
    huge = tmp_path / "huge.py"
    huge.write_bytes(b"import torch\n" + b"#" * MAX_SOURCE_BYTES)
    assert check(tmp_path) == {
        "fifo.py": ["FG500 cannot read: it is a named pipe (FIFO), not a regular file"],
        "huge.py": ["FG500 cannot read: file is larger than 2 MiB"],
        "loop.py": ["FG500 cannot read: a symlink loop (too many levels of symbolic links)"],
        "zero.py": ["FG500 cannot read: it is a device, not a regular file"],
    }
