"""Checkpoints of generated scripts: which files count as one, their sha256, the training plan
they record, and a fault-injection run that damages the last ones at random and must still end
bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.generate.conftest import (
    FACTORY_MODULE,
    final_weights,
    generate,
    run_script,
    script_namespace,
    tiny_spec,
)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


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


def test_a_changed_plan_is_named(tmp_path: Path) -> None:
    ns = script_namespace(generate(tiny_spec(tmp_path, freeze={"layers": {"first": 1}})))
    plan = {
        "optimizer": "AdamW",
        "groups": [["a", "b"]],
        "freeze": ns["FREEZE"],
        "unfreeze": ns["UNFREEZE"],
    }
    change = ns["plan_change"]
    assert change(plan, plan) is None
    older = {**plan, "freeze": {**plan["freeze"], "blocks": [0, 1]}, "groups": [["a"]]}
    assert change(older, plan) == (
        "the checkpoint trained 1 tensors, this script trains 2: freeze.layers changed"
    )
    assert change({**plan, "optimizer": "SGD"}, plan) == (
        "the checkpoint was trained with SGD, this script uses AdamW: optimizer.name changed"
    )
    thawed = {**plan, "groups": [["a"], ["b"]], "unfreeze": [{"at_step": 1}]}
    assert change(thawed, plan).endswith(": freeze.schedule changed")


# The run the faults are injected into: a factory model with dropout (the RNG state matters),
# fp16 (the scaler's state too), block 0 thawed at step 5 (a second optimizer group), a
# checkpoint every 2 steps and the last 4 kept: 6, 8, 10 and 12 remain.
MAX_STEPS, EVERY, KEPT = 12, 2, (6, 8, 10, 12)


def _fault_spec(folder: Path) -> Path:
    spec = tiny_spec(
        folder,
        model={"factory": "tiny_factory:build"},
        freeze={"layers": {"first": 1}, "schedule": [{"at_step": 5, "unfreeze": {"layers": "0"}}]},
        precision="fp16",
        batch={"micro_batch_size": 4, "grad_accum_steps": 1, "seq_len": 16},
        train={"max_steps": MAX_STEPS, "grad_clip": 1.0, "seed": 3, "log_every": 1},
        checkpoint={"dir": "checkpoints", "every_steps": EVERY, "keep_last": len(KEPT)},
    )
    (folder / "tiny_factory.py").write_text(FACTORY_MODULE)
    return spec


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a run that went through: its script, checkpoints and final weights."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    script = generate(_fault_spec(folder))
    run_script(script).check()
    kept = sorted(p.name for p in (folder / "checkpoints").glob("step-*.pt"))
    assert kept == [f"step-{step:08d}.pt" for step in KEPT]
    return folder


def _edited_spec(folder: Path, section: str, **values: Any) -> Path:
    """Write named.freezegen.yaml: the spec in ``folder`` with ``values`` set in ``section``."""
    spec = yaml.safe_load((folder / "freezegen.yaml").read_text())
    spec[section].update(values)
    named = folder / "named.freezegen.yaml"
    named.write_text(yaml.safe_dump(spec, sort_keys=False))
    return named


def _sha256_file(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _truncate(path: Path, rng: random.Random) -> None:
    path.write_bytes(path.read_bytes()[: rng.randrange(path.stat().st_size)])


def _flip_a_bit(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    bit = rng.randrange(len(data) * 8)
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


def _foreign_torch_file(path: Path, rng: random.Random) -> None:
    torch.save({"model": {"weight": torch.randn(4, generator=torch.manual_seed(1))}}, path)


def _foreign_bytes(path: Path, rng: random.Random) -> None:
    path.write_bytes(rng.randbytes(path.stat().st_size))


def _foreign_torch_file_with_its_sha256(path: Path, rng: random.Random) -> None:
    """A torch file of something else, with a matching sha256: only its content tells."""
    torch.save({"step": 3, "model": {}}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _sha256_file(path).write_text(f"{digest}  {path.name}\n")


def _flip_a_bit_of_the_sha256(path: Path, rng: random.Random) -> None:
    _flip_a_bit(_sha256_file(path), rng)


FAULTS: list[Callable[[Path, random.Random], None]] = [
    _truncate,
    _flip_a_bit,
    _foreign_torch_file,
    _foreign_bytes,
    _foreign_torch_file_with_its_sha256,
    _flip_a_bit_of_the_sha256,
]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(len(FAULTS)))
def test_resume_after_random_faults_picks_the_newest_intact_checkpoint(
    uninterrupted: Path, tmp_path: Path, seed: int
) -> None:
    """A crash after step 8 or 10, then faults in the checkpoints it left: the newest always
    (each fault once over the seeds), each older one at random. The resumed run must start from
    the newest intact checkpoint, report every damaged one it skipped and end bit-identical."""
    rng = random.Random(seed)
    folder = tmp_path / "run"
    shutil.copytree(uninterrupted, folder)
    checkpoints = folder / "checkpoints"
    shutil.rmtree(checkpoints / "final")
    crash = rng.choice([8, 10])
    for step in KEPT:
        if step > crash:  # not written yet when the run crashed
            path = checkpoints / f"step-{step:08d}.pt"
            path.unlink()
            _sha256_file(path).unlink()
    left = [step for step in KEPT if step <= crash]
    damaged = {left[-1]: FAULTS[seed]}
    for step in left[:-1]:
        if rng.random() < 0.5:
            damaged[step] = rng.choice(FAULTS)
    for step, fault in damaged.items():
        fault(checkpoints / f"step-{step:08d}.pt", rng)

    run = run_script(folder / "train.py").check()
    intact = [step for step in left if step not in damaged]
    if intact:
        assert f"resumed from step {intact[-1]}\n" in run.stdout, damaged
    else:
        assert "resumed from" not in run.stdout, damaged
    for step in damaged:
        if not intact or step > intact[-1]:
            assert f"skipping checkpoint {checkpoints / f'step-{step:08d}.pt'}: " in run.stdout
    assert _same(final_weights(folder / "train.py"), final_weights(uninterrupted / "train.py"))


@pytest.mark.slow
def test_resume_after_the_freeze_plan_changed_stops_naming_the_change(
    uninterrupted: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(uninterrupted, folder)
    shutil.rmtree(folder / "checkpoints" / "final")
    for step in (10, 12):
        (folder / "checkpoints" / f"step-{step:08d}.pt").unlink()  # crashed after step 8
    generate(_edited_spec(folder, "freeze", layers={"first": 2}), folder / "train.py")
    run = run_script(folder / "train.py")
    # Before, it died inside the optimizer: "loaded state dict contains a parameter group that
    # doesn't match the size of optimizer's group".
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    message = run.stderr.strip()
    assert message.startswith(f"cannot resume from {folder / 'checkpoints' / 'step-00000008.pt'}")
    assert ": freeze.layers changed. To start fresh, move " in message
    assert "checkpoint.resume: never" in message


@pytest.mark.slow
def test_a_damaged_checkpoint_named_by_resume_stops_the_run_saying_why(
    uninterrupted: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    shutil.copytree(uninterrupted, folder)
    named = _edited_spec(folder, "checkpoint", resume="checkpoints/step-00000010.pt")
    script = generate(named, folder / "named.py")
    damaged = folder / "checkpoints" / "step-00000010.pt"
    _flip_a_bit(damaged, random.Random(0))
    run = run_script(script)
    # Never another checkpoint than the one named: that would be another run.
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip() == (
        f"cannot resume from {damaged}: step-00000010.pt does not match its sha256 in "
        "step-00000010.pt.sha256"
    )
    assert "resumed from" not in run.stdout and "step " not in run.stdout
