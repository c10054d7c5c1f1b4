"""Worker processes that survive a crash: the dead worker's item is reported, the rest go on."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from freezegen.check import api, check_paths
from freezegen.check.pool import map_isolated
from freezegen.lint import Overrides


def _segfault() -> None:
    faulthandler.disable()  # pytest's would print the worker's stack
    os.kill(os.getpid(), signal.SIGSEGV)


def _square_or_die(n: int) -> int:
    if n == 3:
        _segfault()
    if n == 5:
        os._exit(7)
    if n == 6:
        raise ValueError("six")
    return n * n


def _crashed(n: int, exitcode: int | None) -> str:
    return f"crashed {n}: {exitcode}"


def test_a_dead_worker_is_reported_for_its_item_and_the_rest_go_on():
    items = [0, 1, 2, 3, 4, 5, 7, 8, 9]
    results = map_isolated(_square_or_die, items, 2, _crashed)
    assert results == [0, 1, 4, f"crashed 3: {-signal.SIGSEGV}", 16, "crashed 5: 7", 49, 64, 81]


def test_exceptions_are_raised_as_in_process():
    with pytest.raises(ValueError, match="six"):
        map_isolated(_square_or_die, [1, 6, 2], 2, _crashed)


def _segfault_on_marker(source, path, options, **fixes):
    if b"CRASH" in source:
        _segfault()
    return REAL_CHECK_SOURCE(source, path, options, **fixes)


REAL_CHECK_SOURCE = api.check_source
TRAIN = "import torch\nstate = torch.load(p)\n"


@pytest.mark.skipif(
    multiprocessing.get_start_method() != "fork", reason="workers must inherit the patch"
)
def test_check_reports_a_crashed_file_as_fg500_and_checks_the_others(tmp_path, monkeypatch):
    # workers are forked from this process, so they inherit the patched engine
    monkeypatch.setattr(api, "check_source", _segfault_on_marker)
    for name in ("a", "b", "d", "e"):
        Path(tmp_path, f"{name}.py").write_text(TRAIN, encoding="utf-8")
    Path(tmp_path, "c.py").write_text("CRASH\n" + TRAIN, encoding="utf-8")
    report = check_paths([tmp_path], Overrides(use_config=False), jobs=2)
    found = sorted((Path(d.path).name, d.code) for d in report.diagnostics)
    assert found == [
        ("a.py", "FG507"),
        ("b.py", "FG507"),
        ("c.py", "FG500"),
        ("d.py", "FG507"),
        ("e.py", "FG507"),
    ]
    (crash,) = [d for d in report.diagnostics if d.code == "FG500"]
    assert "killed by SIGSEGV" in crash.message and report.files == 5
