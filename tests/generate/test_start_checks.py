"""What a generated script checks before it trains: a checkpoint folder it can write to, and
seeds over the whole range the spec allows."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.generate.conftest import generate, run_script, script_namespace, tiny_spec

NOBODY = 65534


def _as_nobody(function: Callable[[], Any]) -> Any:
    """Return what ``function`` returns when called in a forked child running as user nobody
    (when we are root, who writes into read-only folders: a check run as root proves nothing)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges for good, call, send the result back
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            os.write(write, pickle.dumps(function()))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        sent = fh.read()
    os.waitpid(pid, 0)
    return pickle.loads(sent)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="drops privileges in a forked child")
def test_a_read_only_checkpoint_dir_is_refused_before_training() -> None:
    # Not under pytest's tmp_path: its parents are closed to other users.
    folder = Path(tempfile.mkdtemp(prefix="freezegen-readonly-"))
    try:
        folder.chmod(0o755)
        ns = script_namespace(generate(tiny_spec(folder)))
        checkpoints = folder / "checkpoints"
        checkpoints.mkdir(mode=0o555)
        checkpoints.chmod(0o555)  # whatever the umask
        problem = _as_nobody(ns["checkpoint_folder_problem"])
        assert problem == f"checkpoint.dir {checkpoints} cannot hold checkpoints: Permission denied"
        nested = folder / "read-only" / "checkpoints"  # a folder it would have to create
        nested.parent.mkdir(mode=0o555)
        nested.parent.chmod(0o555)
        ns = script_namespace(generate(tiny_spec(folder, checkpoint={"dir": str(nested)})))
        assert "cannot hold checkpoints: Permission denied" in _as_nobody(
            ns["checkpoint_folder_problem"]
        )
        assert not nested.exists()
    finally:
        for path in folder.rglob("*"):
            if path.is_dir():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(folder)


def test_a_missing_checkpoint_dir_is_created(tmp_path: Path) -> None:
    ns = script_namespace(generate(tiny_spec(tmp_path, checkpoint={"dir": "runs/a/checkpoints"})))
    assert ns["checkpoint_folder_problem"]() is None
    assert (tmp_path / "runs" / "a" / "checkpoints").is_dir()
    assert list((tmp_path / "runs" / "a" / "checkpoints").iterdir()) == []


@pytest.mark.slow
def test_a_checkpoint_dir_that_is_a_file_stops_the_run_before_training(tmp_path: Path) -> None:
    script = generate(tiny_spec(tmp_path))
    (tmp_path / "checkpoints").write_text("not a folder")
    run = run_script(script)
    # Before, it trained SAVE_EVERY steps and died in the first save with a traceback.
    assert run.returncode == 1
    assert run.stderr.strip() == f"checkpoint.dir {tmp_path / 'checkpoints'} is not a folder"
    assert "step " not in run.stdout


def test_seeding_takes_every_seed_the_spec_allows(tmp_path: Path) -> None:
    ns = script_namespace(generate(tiny_spec(tmp_path, train={"seed": 2**63 - 1})))
    seed = ns["SEED"]
    assert seed == 2**63 - 1
    # The seeds a script derives from SEED: a rank's (SEED + RANK), and a reseed after a change
    # of world size (SEED + 1_000_003 * step + RANK), whatever the step.
    for derived in (0, seed, seed + 7, seed + 1_000_003 * 2**45 + 7):
        ns["seed_everything"](derived)


def test_a_prediction_larger_than_the_free_gpu_memory_is_said_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # what hardware: {gpu: auto} promises at run time: the script reads the GPU it runs on
    import torch

    ns = script_namespace(generate(tiny_spec(tmp_path)))
    check = ns["check_memory"]
    predicted = ns["PREDICTED_PEAK_BYTES"]
    assert predicted is not None
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (predicted - 1, 2 * predicted))
    check(torch.device("cuda", 0))
    said = capsys.readouterr()
    assert "warning: freezegen predicts a peak of" in said.out + said.err
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (predicted, 2 * predicted))
    check(torch.device("cuda", 0))
    check(torch.device("cpu"))
    said = capsys.readouterr()
    assert "warning" not in said.out + said.err
