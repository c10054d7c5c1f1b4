"""DDP and FSDP2 scripts under torchrun: two CPU processes over gloo, tiny models.

Two ranks with micro-batch 4 must train like one process with micro-batch 8 (the same global
batches, one mean over all their targets), through a progressive unfreeze after wrapping, a
short last window and a rank left without examples. Resuming after a torn checkpoint must end
bit-identical, which needs every rank's RNG, the data position and the (sharded) optimizer state.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import (
    Run,
    final_weights,
    generate,
    initial_state,
    run_script,
    script_env,
    tiny_spec,
)
from tests.generate.tiny_tokenizer import WORDS, write_tokenizer

# Each test runs generated scripts under torchrun: seconds each.
pytestmark = pytest.mark.slow

# 41 examples in global micro-batches of 8: the last holds one, so rank 1 gets none.
COUNTING = """
import torch


class Counting(torch.utils.data.Dataset):
    def __len__(self):
        return 41

    def __getitem__(self, i):
        return (torch.arange(16) * (1 + i % 3) + i) % 63 + 1


def dataset():
    return Counting()
"""


def torchrun_command(script: Path, *args: str) -> list[str]:
    """The command that starts ``script`` on two ranks (torchrun, standalone)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            str(script), *args]  # fmt: skip


def torchrun_env(script: Path) -> dict[str, str]:
    """The environment of a torchrun job for ``script``."""
    env = script_env()
    env["PYTHONPATH"] = str(script.parent)  # torchrun's workers do not add the script's folder
    return env


def torchrun(script: Path, *args: str, timeout: float = 90) -> Run:
    proc = subprocess.run(
        torchrun_command(script, *args),
        cwd=script.parent,
        env=torchrun_env(script),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(script, proc.returncode, proc.stdout, proc.stderr)


def _equivalence_spec(folder: Path, strategy: str, micro_batch: int) -> Path:
    spec = tiny_spec(
        folder,
        model={"hf_config": "./config.json", "dropout": 0.0},
        freeze={
            "embeddings": True,
            "layers": {"first": 1},
            # Thawed after DDP / FSDP wrapped the model.
            "schedule": [{"at_step": 3, "unfreeze": {"layers": "0"}}],
        },
        optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
        batch={"micro_batch_size": micro_batch, "grad_accum_steps": 2, "seq_len": 16},
        data={"source": "factory", "factory": "counting:dataset"},
        train={"max_steps": 8, "grad_clip": 1.0, "seed": 5, "log_every": 1},
        distributed={"strategy": strategy},
    )
    (folder / "counting.py").write_text(COUNTING)
    return spec


def test_ddp_and_fsdp_on_two_processes_match_one_process(tmp_path: Path) -> None:
    single = generate(_equivalence_spec(tmp_path / "single", "none", 8))
    reference = run_script(single).check()
    expected = final_weights(single)
    for strategy in ("ddp", "fsdp"):
        script = generate(_equivalence_spec(tmp_path / strategy, strategy, 4))
        run = torchrun(script).check()
        assert run.stdout.count("step 8/8 |") == 1, "only rank 0 logs"
        assert "step 3: unfroze" in run.stdout
        assert run.losses == pytest.approx(reference.losses, rel=1e-4)
        got = final_weights(script)
        assert got.keys() == expected.keys(), strategy
        for name in expected:
            torch.testing.assert_close(
                got[name], expected[name], rtol=1e-5, atol=1e-6, msg=f"{strategy}: {name}"
            )
    # The frozen embeddings did not move; block 0, thawed at step 3, did.
    initial = initial_state(single)[0]
    assert torch.equal(expected["transformer.wte.weight"], initial["transformer.wte.weight"])
    name = "transformer.h.0.mlp.c_fc.weight"
    assert not torch.equal(expected[name], initial[name])


def test_ddp_on_a_streamed_file_matches_one_process(tmp_path: Path) -> None:
    """Streamed, packed file data: every rank reads the same stream and takes its share of each
    global micro-batch, so two processes of 3 rows train as one of 6 (past an epoch's end)."""
    scripts = []
    for strategy, micro_batch in (("none", 6), ("ddp", 3)):
        folder = tmp_path / strategy
        folder.mkdir()
        write_tokenizer(folder / "tok")
        records = [{"text": " ".join(WORDS[i % 9 : i % 9 + 3 + i % 4])} for i in range(17)]
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        spec = tiny_spec(
            folder,
            model={"hf_config": "./config.json", "dropout": 0.0},
            optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
            batch={"micro_batch_size": micro_batch, "grad_accum_steps": 2, "seq_len": 8},
            data={
                "source": "jsonl",
                "path": "train.jsonl",
                "tokenizer": "tok",
                "packing": True,
                "streaming": True,
            },
            train={"max_steps": 5, "grad_clip": 1.0, "seed": 5, "log_every": 1},
            distributed={"strategy": strategy},
        )
        scripts.append(generate(spec))
    single, ddp = scripts
    reference = run_script(single).check()
    run = torchrun(ddp).check()
    assert run.losses == pytest.approx(reference.losses, rel=1e-4)
    expected, got = final_weights(single), final_weights(ddp)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6, msg=name)


def _resume_spec(folder: Path, strategy: str) -> Path:
    return tiny_spec(
        folder,
        model={"hf_config": "./config.json", "dropout": 0.1},  # every rank's RNG matters
        freeze={"embeddings": True, "layers": {"first": 1}},
        precision="fp16",  # the scaler's state too (FSDP: the sharded scaler)
        activation_checkpointing={"layers": "1"},  # recomputed dropout draws the same masks
        optimizer={"name": "adamw", "lr": 1.0e-2},
        batch={"micro_batch_size": 2, "grad_accum_steps": 2, "seq_len": 16},
        train={"max_steps": 6, "grad_clip": 1.0, "seed": 11, "log_every": 1},
        checkpoint={"dir": "checkpoints", "every_steps": 1, "keep_last": 2, "resume": "auto"},
        distributed={"strategy": strategy},
    )


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_resume_skips_a_damaged_checkpoint_and_ends_bit_identical(
    tmp_path: Path, strategy: str
) -> None:
    script = generate(_resume_spec(tmp_path / "run", strategy))
    torchrun(script).check()
    first = final_weights(script)
    kept = sorted(p.name for p in (script.parent / "checkpoints").glob("step-*"))
    if strategy == "ddp":
        assert kept == [
            "step-00000005.pt",
            "step-00000005.pt.sha256",
            "step-00000006.pt",
            "step-00000006.pt.sha256",
        ]
    else:
        assert kept == ["step-00000005", "step-00000006"]
    # The newest checkpoint torn, or one bit of it flipped (for FSDP in rank 1's shards, which
    # only the SHA256SUMS written after every rank's shards can tell).
    for fault in ("torn", "flipped"):
        folder = tmp_path / fault
        shutil.copytree(script.parent, folder)
        checkpoints = folder / "checkpoints"
        if strategy == "ddp":
            damaged = checkpoints / "step-00000006.pt"
            (checkpoints / ".step-00000007.pt.tmp").write_bytes(b"half a checkpoint")
        else:
            damaged = checkpoints / "step-00000006" / "trainer.pt"
            if fault == "flipped":
                damaged = checkpoints / "step-00000006" / "__1_0.distcp"
            (checkpoints / ".step-00000007.tmp").mkdir()
        if fault == "torn":
            damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
        else:
            _flip_a_bit(damaged)
        shutil.rmtree(checkpoints / "final")
        run = torchrun(folder / script.name).check()
        assert f"skipping checkpoint {checkpoints / 'step-00000006'}" in run.stdout, fault
        assert "resumed from step 5" in run.stdout, fault
        assert _same(first, final_weights(folder / script.name)), fault


def test_a_checkpoint_dir_that_is_a_file_stops_every_rank_before_training(
    tmp_path: Path,
) -> None:
    script = generate(_resume_spec(tmp_path, "ddp"))
    (tmp_path / "checkpoints").write_text("not a folder")
    run = torchrun(script)
    # Rank 0 checks the folder and tells the others: every rank stops, none waits for ever.
    # (torchrun itself prints a traceback when a rank fails; the script prints none.)
    assert run.returncode != 0
    assert run.stderr.count(f"checkpoint.dir {tmp_path / 'checkpoints'} is not a folder") == 1
    assert f'File "{script}"' not in run.stderr
    assert "step " not in run.stdout


def test_distributed_script_without_torchrun_says_how_to_start(tmp_path: Path) -> None:
    script = generate(tiny_spec(tmp_path, distributed={"strategy": "ddp"}))
    run = run_script(script)
    assert run.returncode == 1
    assert "torchrun --nproc-per-node N train.py" in run.stderr


def test_fsdp2_shards_a_mixture_of_experts_and_trains(tmp_path: Path) -> None:
    # fully_shard splits the fused (experts, out, in) tensors along the experts.
    spec = tiny_spec(
        tmp_path,
        "mixtral",
        freeze={"layers": {"first": 1}},
        batch={"micro_batch_size": 4, "grad_accum_steps": 1, "seq_len": 16},
        train={"max_steps": 6, "grad_clip": 1.0, "seed": 5, "log_every": 1},
        distributed={"strategy": "fsdp"},
    )
    script = generate(spec)
    initial, _, _ = initial_state(script)
    run = torchrun(script, timeout=180).check()
    assert len(run.losses) == 6
    final = final_weights(script)
    for block, changed in ((0, False), (1, True)):
        name = f"model.layers.{block}.mlp.experts.gate_up_proj"
        assert torch.equal(initial[name], final[name]) is not changed, name
