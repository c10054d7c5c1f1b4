"""What a generated script records: metrics.jsonl (docs/metrics.md), TensorBoard events, the
memory report, the progress bar on a terminal and ``--probe``; on CPU, one process and torchrun."""

from __future__ import annotations

import json
import math
import os
import pty
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.generate.conftest import (
    generate,
    run_and_kill,
    run_script,
    run_scripts,
    script_env,
    script_namespace,
    tiny_spec,
)
from tests.generate.test_distributed import _equivalence_spec, torchrun

MIB = 2**20


def records(script: Path) -> list[dict[str, Any]]:
    path = script.parent / "checkpoints" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def of_kind(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in found if r["kind"] == kind]


def curve(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The train records without what depends on the clock."""
    return [(r["step"], r["loss"], r["lr"], r["grad_norm"]) for r in of_kind(found, "train")]


def _spec(folder: Path, **sections: Any) -> Path:
    return tiny_spec(
        folder,
        train={"max_steps": 6, "grad_clip": None, "seed": 3, "log_every": 2},
        checkpoint={"dir": "checkpoints", "every_steps": 2, "keep_last": 2},
        **sections,
    )


@pytest.mark.slow
def test_a_run_records_its_start_every_log_step_and_its_memory(tmp_path: Path) -> None:
    script = generate(_spec(tmp_path, memory={"snapshot": True}))
    run = run_script(script).check()
    found = records(script)
    assert [(r["kind"], r["step"]) for r in found] == [
        ("run", 0),
        ("train", 2),
        ("train", 4),
        ("train", 6),
        ("memory", 6),
    ]
    times = [r["time"] for r in found]
    assert times == sorted(times)
    start = found[0]
    assert start["schema"] == 1 and start["max_steps"] == 6 and start["world_size"] == 1
    assert start["device"] == "cpu" and start["predicted_peak_bytes"] > 0
    assert 0 < start["trainable_parameters"] == start["total_parameters"]
    losses = [float(line.split("| loss ")[1].split()[0]) for line in run.stdout.splitlines()
              if line.startswith("step ")]  # fmt: skip
    for record, logged in zip(of_kind(found, "train"), losses, strict=True):
        assert round(record["loss"], 4) == logged
        assert record["lr"] == pytest.approx(1.0e-2)
        # Nothing clips (grad_clip: null): the norm is measured all the same.
        assert record["grad_norm"] > 0 and record["tokens_per_s"] > 0
        assert record["max_allocated_bytes"] is None and record["reserved_bytes"] is None
    memory = found[-1]
    assert memory["predicted_peak_bytes"] == start["predicted_peak_bytes"]
    assert {k for k, v in memory.items() if v is None} == {
        "max_allocated_bytes",
        "reserved_bytes",
        "fragmentation_bytes",
        "alloc_retries",
        "cuda_malloc_count",
    }
    assert "peak memory: measured n/a on CPU" in run.stdout
    assert "cudaMalloc calls are not measured" in run.stdout
    # stderr is not a terminal here: no progress bar in it.
    assert "\r" not in run.stderr
    # The allocator snapshot is CUDA's: the run says it records none.
    assert "memory.snapshot: not on CUDA, so no allocator history is recorded" in run.stdout
    assert not (script.parent / "checkpoints" / "memory-snapshot.pickle").exists()


@pytest.mark.slow
def test_resuming_drops_the_records_its_checkpoint_never_saw(tmp_path: Path) -> None:
    reference = generate(_spec(tmp_path / "reference"))
    script = generate(_spec(tmp_path / "resumed"))
    for run in run_scripts([reference, script]):
        run.check()
    # Back to step 4: the step-6 checkpoint and the final weights gone, a line cut short by a
    # kill at the end of the file.
    checkpoints = script.parent / "checkpoints"
    for name in ("step-00000006.pt", "step-00000006.pt.sha256"):
        (checkpoints / name).unlink()
    shutil.rmtree(checkpoints / "final")
    with open(checkpoints / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"kind": "train", "step": 7, "lo')
    assert "resumed from step 4" in run_script(script).check().stdout
    found = records(script)
    assert [(r["kind"], r["step"]) for r in found] == [
        ("run", 0),
        ("train", 2),
        ("train", 4),
        ("run", 4),
        ("train", 6),
        ("memory", 6),
    ]
    assert curve(found) == curve(records(reference))
    assert not list(checkpoints.glob(".*.tmp"))
    # A run that starts afresh (no checkpoint left) starts a new file.
    for old in checkpoints.glob("step-*"):
        old.unlink()
    run_script(script).check()
    assert [r["step"] for r in of_kind(records(script), "run")] == [0]


@pytest.mark.slow
def test_killed_and_resumed_runs_record_the_uninterrupted_curve(tmp_path: Path) -> None:
    def spec(folder: Path) -> Path:
        return tiny_spec(
            folder,
            model={"hf_config": "./config.json", "dropout": 0.1},
            precision="fp16",  # the norm is unscaled before it is recorded
            train={"max_steps": 12, "grad_clip": 1.0, "seed": 11, "log_every": 1},
            checkpoint={"dir": "checkpoints", "every_steps": 3, "keep_last": 2},
        )

    reference, killed = generate(spec(tmp_path / "reference")), generate(spec(tmp_path / "k"))
    rng = random.Random(12)
    for _ in range(3):
        run_and_kill(killed, rng.randint(1, 4), rng.uniform(0.0, 0.01))
    for run in run_scripts([reference, killed]):
        run.check()
    expected, found = records(reference), records(killed)
    assert curve(found) == curve(expected)
    steps = [r["step"] for r in found]
    assert steps == sorted(steps)
    assert of_kind(found, "memory") and len(of_kind(found, "run")) >= 2


@pytest.mark.slow
def test_tensorboard_events_hold_the_records_numbers(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    script = generate(_spec(tmp_path, logging={"tensorboard": True}))
    run_script(script).check()
    events = EventAccumulator(str(script.parent / "checkpoints"))
    events.Reload()
    train = of_kind(records(script), "train")
    for field in ("loss", "lr", "grad_norm", "tokens_per_s"):
        scalars = events.Scalars(f"train/{field}")
        assert [s.step for s in scalars] == [r["step"] for r in train], field
        assert [s.value for s in scalars] == pytest.approx([r[field] for r in train], rel=1e-6)
    assert [s.step for s in events.Scalars("memory/predicted_peak_bytes")] == [6]
    # Null fields (CPU memory) and the run record are not drawn.
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("run/")]
    assert "memory/max_allocated_bytes" not in events.Tags()["scalars"]


def test_only_scripts_asking_for_tensorboard_import_it(tmp_path: Path) -> None:
    plain = generate(_spec(tmp_path / "plain"))
    logged = generate(_spec(tmp_path / "logged", logging={"tensorboard": True}))
    assert "tensorboard" not in plain.read_text()
    assert "from torch.utils.tensorboard import SummaryWriter" in logged.read_text()


@pytest.mark.slow
def test_probe_trains_n_steps_writes_nothing_and_prints_the_table(tmp_path: Path) -> None:
    script = generate(_spec(tmp_path, memory={"snapshot": True}))
    proc = subprocess.run(
        [sys.executable, str(script), "--probe", "3"],
        cwd=script.parent,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (script.parent / "checkpoints").exists()
    lines = proc.stdout.splitlines()
    assert [line.split(" |")[0] for line in lines if line.startswith("step ")] == [
        "step 2/6",
        "step 3/6",
    ]
    table = lines[
        lines.index("memory probe: 3 steps on cpu, measured against freezegen's prediction") :
    ]
    for row in ("parameters", "gradients", "optimizer states", "activations", "temporaries"):
        assert any(line.split()[:-1] == row.split() for line in table), row
    assert any(line.strip().startswith("model on the device") and " n/a " in line for line in table)
    assert table[-1] == "  measured n/a on cpu: torch keeps no allocator statistics there"
    assert "memory.snapshot: not on CUDA" not in proc.stdout  # a probe records no snapshot
    wrong = subprocess.run(
        [sys.executable, str(script), "--probe", "0"],
        cwd=script.parent,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2 and "--probe" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.slow
def test_a_terminal_gets_a_progress_bar_and_logs_stay_plain(tmp_path: Path) -> None:
    script = generate(_spec(tmp_path))
    main, terminal = pty.openpty()
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed its end
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
        timeout=120,
    )
    os.close(terminal)
    reader.join(timeout=10)
    os.close(main)
    assert proc.returncode == 0
    bar = seen.decode(errors="replace")
    for step in range(1, 7):
        assert f"] step {step}/6 | loss " in bar
    assert f"\r[{'#' * 30}] step 6/6" in bar
    assert bar.count("\r\033[K") >= 3  # wiped before each of the three lines
    assert "\r" not in proc.stdout and "\033" not in proc.stdout
    assert [line.split(" |")[0] for line in proc.stdout.splitlines() if "|" in line] == [
        "step 2/6",
        "step 4/6",
        "step 6/6",
    ]


# What torch.cuda.memory_stats() returns after a run (torch 2.13, one H100): every core
# statistic per pool and metric, and the event counters.
def _cuda_stats() -> dict[str, int]:
    stats = {
        f"{name}.{pool}.{metric}": 0
        for name in (
            "active",
            "active_bytes",
            "allocated_bytes",
            "allocation",
            "inactive_split",
            "inactive_split_bytes",
            "requested_bytes",
            "reserved_bytes",
            "segment",
        )
        for pool in ("all", "large_pool", "small_pool")
        for metric in ("current", "peak", "allocated", "freed")
    }
    stats.update(
        {
            "allocated_bytes.all.peak": 6_442_450_944 + 512,
            "allocated_bytes.all.current": 2_147_483_648,
            "reserved_bytes.all.peak": 7_516_192_768,
            "reserved_bytes.all.current": 7_516_192_768,
            "segment.all.allocated": 61,
            "num_alloc_retries": 2,
            "num_ooms": 0,
            "num_sync_all_streams": 0,
            "num_device_alloc": 63,
            "num_device_free": 2,
            "max_split_size": -1,
        }
    )
    return stats


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return script_namespace(generate(_spec(tmp_path_factory.mktemp("script"))))


def test_the_memory_report_reads_cuda_allocator_statistics(namespace: dict[str, Any]) -> None:
    predicted = namespace["PREDICTED_PEAK_BYTES"]
    fields = namespace["memory_fields"](_cuda_stats())
    assert fields == {
        "max_allocated_bytes": 6_442_450_944 + 512,
        "predicted_peak_bytes": predicted,
        "reserved_bytes": 7_516_192_768,
        "fragmentation_bytes": 7_516_192_768 - 6_442_450_944 - 512,
        "alloc_retries": 2,
        "cuda_malloc_count": 63,
    }
    # A torch without num_device_alloc: the segments it made are its cudaMalloc calls.
    older = {k: v for k, v in _cuda_stats().items() if k != "num_device_alloc"}
    assert namespace["memory_fields"](older)["cuda_malloc_count"] == 61
    lines = namespace["memory_lines"](fields, " (rank 0)")
    share = (6_442_450_944 + 512 - predicted) / predicted
    assert lines[0] == (
        f"peak memory (rank 0): 6,144.0 MiB measured, {predicted / MIB:,.1f} MiB predicted by "
        f"freezegen ({share:+.1%} measured)"
    )
    assert lines[1] == (
        "memory (rank 0): 7,168.0 MiB reserved at most, 1,024.0 MiB fragmentation at the peak "
        "(reserved - allocated), 2 allocation retries, 63 cudaMalloc calls"
    )


def test_the_probe_table_sets_each_point_against_its_prediction(
    namespace: dict[str, Any],
) -> None:
    breakdown = namespace["PREDICTED_BREAKDOWN"]
    points = {
        "model on the device": 100 * MIB,
        "after the first backward": 150 * MIB,
        "after the first optimizer step": 250 * MIB,
    }
    lines = namespace["probe_lines"](4, "cuda", points, _cuda_stats())
    assert lines[0] == "memory probe: 4 steps on cuda, measured against freezegen's prediction"
    rows = {line[:36].strip(): line[36:].split() for line in lines[1:]}
    mib = lambda size: f"{size / MIB:,.1f}"  # noqa: E731
    assert rows["parameters"] == [mib(breakdown["parameters"])]
    assert rows["model on the device"] == ["100.0", mib(breakdown["parameters"])]
    after_step = breakdown["parameters"] + breakdown["gradients"] + breakdown["optimizer_states"]
    assert rows["after the first optimizer step"] == ["250.0", mib(after_step)]
    assert rows["peak (max_memory_allocated)"] == [
        "6,144.0",
        mib(namespace["PREDICTED_PEAK_BYTES"]),
    ]


def test_non_finite_numbers_are_recorded_as_null(namespace: dict[str, Any]) -> None:
    # An fp16 step the GradScaler skips has an infinite gradient norm; JSON has no inf.
    json_value = namespace["json_value"]
    assert [json_value(v) for v in (math.inf, -math.inf, math.nan, 1.5, 3, None)] == [
        None,
        None,
        None,
        1.5,
        3,
        None,
    ]


@pytest.mark.slow
def test_ddp_and_fsdp_record_once_with_the_one_process_norms(tmp_path: Path) -> None:
    single = generate(_equivalence_spec(tmp_path / "single", "none", 8))
    run_script(single).check()
    expected = curve(records(single))
    for strategy in ("ddp", "fsdp"):
        script = generate(_equivalence_spec(tmp_path / strategy, strategy, 4))
        torchrun(script).check()
        found = records(script)
        # The schedule thaws block 0 at step 3, before step 4 trains: one event, as in one
        # process (thawing.record is rank 0's recorder there too).
        kinds = ["run"] + ["train"] * 3 + ["thaw"] + ["train"] * 5 + ["memory"]
        assert [r["kind"] for r in found] == kinds, strategy

        def thaws(script: Path) -> list[tuple[int, int, int]]:
            return [(r["step"], r["entry"], r["tensors"]) for r in of_kind(records(script), "thaw")]

        assert thaws(script) == thaws(single)
        assert thaws(script)[0][:2] == (3, 0) and thaws(script)[0][2] > 0
        assert found[0]["world_size"] == 2
        # The gradient norm is the global one (FSDP2: the full DTensor), as one process has it.
        for got, want in zip(curve(found), expected, strict=True):
            assert got[0] == want[0] and got[2] == want[2]
            assert got[1] == pytest.approx(want[1], rel=1e-4), strategy
            assert got[3] == pytest.approx(want[3], rel=1e-4), strategy
        probe = torchrun(script, "--probe", "2").check()
        assert probe.stdout.count("memory probe: 2 steps on cpu") == 1  # rank 0 prints
        assert len(records(script)) == len(found)  # the probe recorded nothing


def test_the_probe_measures_each_point_once(
    namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    # A CUDA device as the script sees one: memory_allocated answers from a counter here.
    allocated = iter(range(1, 100))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: next(allocated))
    watch = namespace["MemoryWatch"](torch.device("cuda"), snapshot=False)
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    watch.watch(optimizer)
    for _ in range(3):
        weight.grad = torch.ones(3)
        optimizer.step()
    assert watch.points == {
        "model on the device": 1,
        "after the first backward": 2,
        "after the first optimizer step": 3,
    }
    assert not optimizer._optimizer_step_pre_hooks and not optimizer._optimizer_step_post_hooks


def test_a_cuda_run_dumps_the_allocator_history_and_reports_its_statistics(
    namespace: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    calls: list[tuple[str, Any]] = []
    memory = torch.cuda.memory
    monkeypatch.setattr(
        memory,
        "_record_memory_history",
        lambda enabled="all", **kw: calls.append(("record", enabled)),
    )
    monkeypatch.setattr(memory, "_dump_snapshot", lambda path: calls.append(("dump", path)))
    monkeypatch.setattr(torch.cuda, "memory_stats", lambda device: _cuda_stats())
    scope = namespace["MemoryWatch"].__init__.__globals__
    monkeypatch.setitem(scope, "HERE", tmp_path)
    logged: list[str] = []
    monkeypatch.setitem(scope, "log", logged.append)
    watch = namespace["MemoryWatch"](torch.device("cuda"), snapshot=True)
    assert calls == [("record", "all")]
    metrics = namespace["Metrics"](writes=False)
    watch.finish(6, metrics)
    snapshot = tmp_path / namespace["CHECKPOINT_DIR"] / "memory-snapshot.pickle"
    assert calls[1:] == [("dump", str(snapshot)), ("record", None)]
    assert logged[0].startswith("peak memory: 6,144.0 MiB measured")
    assert logged[-1] == f"allocator snapshot in {snapshot} (open it at pytorch.org/memory_viz)"
