"""Checkpoints of generated scripts: which files count as one."""

from __future__ import annotations

from pathlib import Path

from tests.generate.conftest import (
    generate,
    script_namespace,
    tiny_spec,
)


def test_only_files_named_as_save_names_them_are_checkpoints(tmp_path: Path) -> None:
    ns = script_namespace(generate(tiny_spec(tmp_path)))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("step-00000010.pt", "step-00000002.pt", "step-123456789.pt"):
        (folder / name).write_bytes(b"")
    # Before the strict pattern, int("best") made every start crash.
    for stray in ("step-best.pt", "step-12.pt.bak", "step-12.pt", ".step-00000011.pt.tmp"):
        (folder / stray).write_bytes(b"")
    (folder / "step-00000002.pt.sha256").write_text("")
    (folder / "step-x").mkdir()
    (folder / "step-00000003.pt").mkdir()  # a folder is not a single-file checkpoint
    found = [p.name for p in ns["checkpoint_files"]()]
    assert found == ["step-00000002.pt", "step-00000010.pt", "step-123456789.pt"]


def test_sharded_checkpoints_are_folders_named_as_save_names_them(tmp_path: Path) -> None:
    ns = script_namespace(generate(tiny_spec(tmp_path, distributed={"strategy": "fsdp"})))
    folder = tmp_path / "checkpoints"
    for name in ("step-00000004", "step-best", "step-x", ".step-00000005.tmp"):
        (folder / name).mkdir(parents=True)
    (folder / "step-00000006").write_bytes(b"")  # a file is not a sharded checkpoint
    assert [p.name for p in ns["checkpoint_files"]()] == ["step-00000004"]
