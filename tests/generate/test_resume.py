"""Accumulation equivalence, and resuming after SIGKILL or from a torn checkpoint, bit for bit."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from tests.generate.conftest import (
    final_weights,
    generate,
    run_and_kill,
    run_script,
    run_scripts,
    tiny_spec,
)
from tests.generate.tiny_tokenizer import WORDS, write_tokenizer

# Each test runs generated scripts in subprocesses: seconds each.
pytestmark = pytest.mark.slow


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_micro_batch_2_accum_4_matches_micro_batch_8(tmp_path: Path) -> None:
    scripts = []
    for mb, accum in ((2, 4), (8, 1)):
        spec = tiny_spec(
            tmp_path / f"mb{mb}",
            model={"hf_config": "./config.json", "dropout": 0.0},
            freeze={"layers": {"first": 1}},
            # SGD: Adam divides by the gradient's own scale, which blows rounding noise in
            # gradients that are zero in exact arithmetic (attention key biases) up to lr.
            optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
            batch={"micro_batch_size": mb, "grad_accum_steps": accum, "seq_len": 16},
            train={"max_steps": 10, "grad_clip": 1.0, "seed": 5, "log_every": 5},
        )
        scripts.append(generate(spec))
    for run in run_scripts(scripts):
        run.check()
    split, whole = (final_weights(s) for s in scripts)
    assert split.keys() == whole.keys()
    for name in split:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-5, atol=1e-6, msg=name)


def _resume_spec(folder: Path) -> Path:
    return tiny_spec(
        folder,
        model={"hf_config": "./config.json", "dropout": 0.1},  # the RNG state matters
        freeze={"embeddings": True, "layers": {"first": 1}},
        precision="fp16",  # the scaler's state too
        scheduler={"name": "cosine", "warmup_steps": 2},
        train={"max_steps": 16, "grad_clip": 1.0, "seed": 11, "log_every": 1},
        checkpoint={"dir": "checkpoints", "every_steps": 1, "keep_last": 2, "resume": "auto"},
    )


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    reference = generate(_resume_spec(tmp_path / "reference"))
    killed = generate(_resume_spec(tmp_path / "killed"))
    rng = random.Random(20240611)
    # Three kills at random moments: after 1-4 steps of each run (16 in all, so each is still
    # running) plus up to 10 ms; every step writes a checkpoint, so some land mid-write.
    kills = 0
    for _ in range(3):
        if run_and_kill(killed, rng.randint(1, 4), rng.uniform(0.0, 0.01)) is None:
            kills += 1
    assert kills >= 2
    ref_run, resumed = run_scripts([reference, killed])
    ref_run.check()
    assert "resumed from step" in resumed.check().stdout
    assert _same(final_weights(reference), final_weights(killed))


def _data_resume_spec(folder: Path, data: dict) -> Path:
    """The resume spec over a small completion set, so the run passes several epochs."""
    folder.mkdir(parents=True)
    write_tokenizer(folder / "tok")
    records = [
        {"prompt": " ".join(WORDS[i % 7 : i % 7 + 2 + i % 4]), "completion": WORDS[i % 11]}
        for i in range(19)
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tiny_spec(
        folder,
        data={"source": "jsonl", "path": "train.jsonl", "tokenizer": "tok", **data},
        model={"hf_config": "./config.json", "dropout": 0.1},
        freeze={"embeddings": True, "layers": {"first": 1}},
        precision="fp16",
        scheduler={"name": "cosine", "warmup_steps": 2},
        batch={"micro_batch_size": 3, "grad_accum_steps": 2, "seq_len": 12},
        train={"max_steps": 16, "grad_clip": 1.0, "seed": 11, "log_every": 1},
        checkpoint={"dir": "checkpoints", "every_steps": 1, "keep_last": 2, "resume": "auto"},
    )


@pytest.mark.parametrize(
    "data",
    [
        {"format": "completion", "packing": True},
        {"format": "completion", "streaming": True},
    ],
    ids=["packed", "streamed"],
)
def test_sigkill_then_resume_with_file_data_is_bit_identical(tmp_path: Path, data: dict) -> None:
    reference = generate(_data_resume_spec(tmp_path / "reference", data))
    killed = generate(_data_resume_spec(tmp_path / "killed", data))
    rng = random.Random(20261202)
    kills = 0
    for _ in range(3):
        if run_and_kill(killed, rng.randint(1, 4), rng.uniform(0.0, 0.01)) is None:
            kills += 1
    assert kills >= 2
    ref_run, resumed = run_scripts([reference, killed])
    ref_run.check()
    assert "resumed from step" in resumed.check().stdout
    assert _same(final_weights(reference), final_weights(killed))


def test_torn_checkpoint_is_skipped(tmp_path: Path) -> None:
    script = generate(_resume_spec(tmp_path))
    run_script(script).check()
    first = final_weights(script)
    folder = script.parent / "checkpoints"
    newest = folder / "step-00000016.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # torn
    (folder / ".step-00000017.pt.tmp").write_bytes(b"half a checkpoint")
    shutil.rmtree(folder / "final")
    run = run_script(script).check()
    assert f"skipping checkpoint {newest}: " in run.stdout
    assert "resumed from step 15" in run.stdout
    assert _same(first, final_weights(script))


def test_resume_from_a_named_checkpoint_and_fail_when_it_is_torn(tmp_path: Path) -> None:
    script = generate(_resume_spec(tmp_path))
    run_script(script).check()
    first = final_weights(script)
    spec = _resume_spec(tmp_path)  # the same run, resumed from a checkpoint it names
    named = tmp_path / "named.freezegen.yaml"
    named.write_text(
        spec.read_text().replace("resume: auto", "resume: checkpoints/step-00000015.pt")
    )
    script = generate(named, tmp_path / "named.py")
    run = run_script(script).check()
    assert "resumed from step 15" in run.stdout
    assert _same(first, final_weights(script))
    torn = tmp_path / "checkpoints" / "step-00000015.pt"
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    run = run_script(script)
    # A checkpoint the spec names is never skipped for another one: the run stops.
    assert run.returncode != 0 and "skipping" not in run.stdout
    assert "resumed from" not in run.stdout


def test_resume_path_generated_from_another_folder_resumes(tmp_path: Path, monkeypatch) -> None:
    # Generated through the command with paths relative to a working directory other than the
    # spec's folder: RESUME used to double that folder (project/project/checkpoints/...).
    from freezegen.commands import generate as command

    project = tmp_path / "project"
    script = generate(_resume_spec(project))
    run_script(script).check()
    first = final_weights(script)
    named = project / "named.freezegen.yaml"
    named.write_text(
        (project / "freezegen.yaml")
        .read_text()
        .replace("resume: auto", "resume: checkpoints/step-00000015.pt")
    )
    monkeypatch.chdir(tmp_path)
    output = Path("project") / "named.py"
    result = command.run(command.Options(spec=Path("project/named.freezegen.yaml"), output=output))
    assert result.exit_code == 0, result.output
    run = run_script(tmp_path / output).check()
    assert "resumed from step 15" in run.stdout
    assert _same(first, final_weights(tmp_path / output))
