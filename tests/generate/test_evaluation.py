"""Evaluation in generated scripts (issue 12): the validation loss is the token-weighted loss
over the held-out batches, keep_best keeps the weights of the lowest one, early stopping and
plateau thawing happen at the evaluation their patience says, and all of it survives SIGKILL,
DDP and FSDP2 bit for bit or alike."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tests.generate.conftest import (
    final_weights,
    generate,
    run_and_kill,
    run_script,
    run_scripts,
    script_namespace,
    tiny_spec,
)
from tests.generate.test_distributed import torchrun

# A min_delta no loss can beat: after its first evaluation, none improves.
NEVER = 1000.0
BLOCK_0 = "transformer.h.0."


def _spec(folder: Path, **sections: Any) -> Path:
    base: dict[str, Any] = {
        "model": {"hf_config": "./config.json", "dropout": 0.1},
        "freeze": {"embeddings": True, "layers": {"first": 1}},
        "eval": {"every_steps": 2, "max_batches": 3},
        "train": {"max_steps": 12, "grad_clip": 1.0, "seed": 3, "log_every": 1},
        "checkpoint": {"dir": "checkpoints", "every_steps": 2, "keep_last": 100},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return tiny_spec(folder, **base)


def _val_losses(stdout: str) -> dict[int, float]:
    """The logged validation loss of each step."""
    found = {}
    for line in stdout.splitlines():
        if "| val loss " in line:
            step = int(line.split()[1].split("/")[0])
            found[step] = float(line.split("| val loss ")[1].split(" ")[0])
    return found


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def test_evaluation_is_the_token_weighted_loss_over_the_held_out_batches(tmp_path: Path) -> None:
    script = generate(_spec(tmp_path, eval={"every_steps": 2, "max_batches": 3}))
    ns = script_namespace(script)
    ns["seed_everything"](ns["SEED"])
    model = ns["build_model"]()
    frozen = ns["frozen_parameters"](model)
    for name, p in model.named_parameters():
        p.requires_grad_(name not in frozen)
    ns["set_train_mode"](model)
    modes = {name: m.training for name, m in model.named_modules()}
    train = ns["build_dataset"](model)
    held_out = ns["build_validation"](model)
    # Held out: the sequences at the indices past the training set's, never trained on.
    assert len(held_out) == 3 * ns["MICRO_BATCH_SIZE"]
    for i, example in enumerate(held_out):
        assert torch.equal(example["input_ids"], train[len(train) + i]["input_ids"])
    batches = ns["validation_batches"](held_out)
    assert len(batches) == 3
    result = ns["evaluate"](model, batches, torch.device("cpu"))

    # Train mode is back as set_train_mode left it (the frozen block's dropout stays in eval),
    # and no gradient was recorded.
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert not modes["transformer.h.0.attn.attn_dropout"]
    assert modes["transformer.h.1.attn.attn_dropout"]
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    summed, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(held_out), ns["MICRO_BATCH_SIZE"]):
            ids = torch.stack([e["input_ids"] for e in held_out[start : start + 8]])
            logits = model(input_ids=ids).logits.double()
            summed += float(F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten(),
                                            reduction="sum"))  # fmt: skip
            count += ids[:, 1:].numel()
    assert result["val_tokens"] == count
    assert result["val_loss"] == pytest.approx(summed / count, rel=1e-6)
    assert result["val_ppl"] == pytest.approx(math.exp(summed / count), rel=1e-6)


@pytest.mark.slow
def test_the_best_checkpoint_holds_the_weights_of_the_lowest_validation_loss(
    tmp_path: Path,
) -> None:
    # A learning rate high enough that the validation loss goes up and down.
    spec = _spec(tmp_path, optimizer={"name": "sgd", "lr": 20.0}, checkpoint={"keep_best": True})
    script = generate(spec)
    run = run_script(script).check()
    losses = _val_losses(run.stdout)
    assert sorted(losses) == [2, 4, 6, 8, 10, 12]
    best_step = min(losses, key=lambda step: (losses[step], step))
    folder = script.parent / "checkpoints"
    best = _load(folder / "best.pt")
    assert best["step"] == best_step and best["validation"]["best_step"] == best_step
    own = _load(folder / f"step-{best_step:08d}.pt")
    assert best["model"].keys() == own["model"].keys()
    assert all(torch.equal(best["model"][k], own["model"][k]) for k in own["model"])
    # Its weights give the lowest loss again, and it is a checkpoint a run resumes from.
    ns = script_namespace(script)
    model = ns["build_model"]()
    model.load_state_dict(best["model"])
    again = ns["evaluate"](model, ns["validation_batches"](ns["build_validation"](model)), "cpu")
    assert round(again["val_loss"], 4) == losses[best_step]
    ns["verify_checkpoint"](folder / "best.pt")


@pytest.mark.slow
def test_early_stop_stops_at_the_evaluation_its_patience_says(tmp_path: Path) -> None:
    # Evaluations at 2 (the first, an improvement), 4 and 6 (none): patience 2 stops at 6.
    spec = _spec(tmp_path, train={"early_stop": {"patience": 2, "min_delta": NEVER}})
    script = generate(spec)
    run = run_script(script).check()
    assert sorted(_val_losses(run.stdout)) == [2, 4, 6]
    assert "step 6: early stop" in run.stdout
    assert "step 7/" not in run.stdout
    last = _load(script.parent / "checkpoints" / "step-00000006.pt")
    assert last["validation"]["stopped"] is True
    assert (script.parent / "checkpoints" / "final").is_dir()
    # Resumed from there, the run knows it stopped.
    again = run_script(script).check()
    assert "resumed from step 6" in again.stdout and "step 7/" not in again.stdout


@pytest.mark.slow
def test_plateau_entries_thaw_their_blocks_into_the_optimizer_when_detected(
    tmp_path: Path,
) -> None:
    # Two plateau entries, each reached after 2 evaluations without improvement: the first
    # counts from step 2 (its baseline) and fires at 6; the second counts afresh from 8 and
    # fires at 12 (past the end: never).
    spec = _spec(
        tmp_path,
        freeze={
            "embeddings": True,
            "layers": {"first": 2},
            "schedule": [
                {
                    "when": {"plateau": {"patience": 2, "min_delta": NEVER}},
                    "unfreeze": {"layers": "1"},
                },
                {
                    "when": {"plateau": {"patience": 2, "min_delta": NEVER}},
                    "unfreeze": {"layers": "0"},
                },
            ],
        },
    )
    script = generate(spec)
    run = run_script(script).check()
    assert "step 6: validation loss plateaued, freeze.schedule[0] thaws" in run.stdout
    assert "step 6: unfroze 12 parameter tensors (freeze.schedule[0])" in run.stdout
    assert "freeze.schedule[1] thaws" in run.stdout.split("step 12/")[-1]
    folder = script.parent / "checkpoints"
    at_6, at_8 = _load(folder / "step-00000006.pt"), _load(folder / "step-00000008.pt")
    # Detected after step 6, thawed before step 7: the checkpoint of step 6 has it due.
    assert len(at_6["plan"]["groups"]) == 1 and at_6["thawing"]["due"] == [0]
    groups = at_8["plan"]["groups"]
    assert len(groups) == 2
    assert groups[1] and all(name.startswith("transformer.h.1.") for name in groups[1])
    block_1 = sorted(n for n in at_8["model"] if n.startswith("transformer.h.1.") and
                     not n.endswith((".attn.bias", ".attn.masked_bias")))  # fmt: skip
    assert sorted(groups[1]) == block_1
    assert at_8["thawing"] == {
        "thawed": [0], "due": [], "plateaus": [1], "waiting": at_8["thawing"]["waiting"]
    }  # fmt: skip
    initial = _load(folder / "step-00000002.pt")["model"]
    name = "transformer.h.1.mlp.c_fc.weight"
    assert torch.equal(initial[name], at_6["model"][name])  # frozen until the plateau
    assert not torch.equal(at_6["model"][name], at_8["model"][name])  # trained after it
    assert torch.equal(
        at_8["model"][BLOCK_0 + "mlp.c_fc.weight"], initial[BLOCK_0 + "mlp.c_fc.weight"]
    )


def _resume_spec(folder: Path) -> Path:
    return _spec(
        folder,
        freeze={
            "embeddings": True,
            "layers": {"first": 2},
            "schedule": [
                {"at_step": 9, "unfreeze": {"embeddings": True}},
                {
                    "when": {"plateau": {"patience": 1, "min_delta": NEVER}},
                    "unfreeze": {"layers": "1"},
                },
                {
                    "when": {"plateau": {"patience": 2, "min_delta": 0.0}},
                    "unfreeze": {"layers": "0"},
                },
            ],
        },
        precision="fp16",
        eval={"every_steps": 2, "max_batches": 2, "at_start": True},
        train={"max_steps": 16, "seed": 11, "early_stop": {"patience": 6}},
        checkpoint={"every_steps": 1, "keep_last": 2, "keep_best": True, "resume": "auto"},
    )


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    reference = generate(_resume_spec(tmp_path / "reference"))
    killed = generate(_resume_spec(tmp_path / "killed"))
    rng = random.Random(20261202)
    kills = 0
    for _ in range(4):
        if run_and_kill(killed, rng.randint(3, 9), rng.uniform(0.0, 0.01)) is None:
            kills += 1
    assert kills >= 2
    ref_run, resumed = run_scripts([reference, killed])
    ref_run.check()
    assert "resumed from step" in resumed.check().stdout
    assert "unfroze" in ref_run.stdout
    got, expected = final_weights(killed), final_weights(reference)
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    best = [_load(s.parent / "checkpoints" / "best.pt") for s in (reference, killed)]
    assert best[0]["step"] == best[1]["step"]
    assert best[0]["validation"] == best[1]["validation"]
    assert best[0]["thawing"] == best[1]["thawing"]
    assert all(torch.equal(best[0]["model"][k], best[1]["model"][k]) for k in best[0]["model"])
    last = [_load(s.parent / "checkpoints" / "step-00000016.pt") for s in (reference, killed)]
    assert last[0]["plan"] == last[1]["plan"] and last[0]["thawing"] == last[1]["thawing"]


def _distributed_spec(folder: Path, strategy: str, micro_batch: int) -> Path:
    return _spec(
        folder,
        model={"hf_config": "./config.json", "dropout": 0.0},
        freeze={
            "embeddings": True,
            "layers": {"first": 2},
            "schedule": [
                {
                    "when": {"plateau": {"patience": 1, "min_delta": NEVER}},
                    "unfreeze": {"layers": "1"},
                }
            ],
        },
        optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
        batch={"micro_batch_size": micro_batch, "grad_accum_steps": 2, "seq_len": 16},
        eval={"every_steps": 2, "max_batches": 2},
        train={"max_steps": 8, "early_stop": {"patience": 3, "min_delta": NEVER}},
        checkpoint={"every_steps": 4, "keep_last": 2, "keep_best": True},
        distributed={"strategy": strategy},
    )


@pytest.mark.slow
def test_ddp_and_fsdp_evaluate_and_decide_as_one_process(tmp_path: Path) -> None:
    single = generate(_distributed_spec(tmp_path / "single", "none", 8))
    reference = run_script(single).check()
    expected = _val_losses(reference.stdout)
    assert sorted(expected) == [2, 4, 6, 8]
    assert "step 4: unfroze" in reference.stdout and "step 8: early stop" in reference.stdout
    for strategy in ("ddp", "fsdp"):
        script = generate(_distributed_spec(tmp_path / strategy, strategy, 4))
        run = torchrun(script).check()
        got = _val_losses(run.stdout)
        assert got.keys() == expected.keys(), strategy
        assert list(got.values()) == pytest.approx(list(expected.values()), abs=2e-4), strategy
        assert "step 4: unfroze" in run.stdout and "step 8: early stop" in run.stdout
        best = script.parent / "checkpoints" / ("best.pt" if strategy == "ddp" else "best")
        assert best.exists(), strategy


def test_the_script_predicts_the_peak_of_its_most_thawed_state(tmp_path: Path) -> None:
    from freezegen.memory import estimate
    from freezegen.memory.schedule import run_peak
    from freezegen.spec import load_spec

    plateau = {
        "when": {"plateau": {"patience": 2}},
        "unfreeze": {"layers": "0", "embeddings": True},
    }
    path = _spec(tmp_path, freeze={"schedule": [plateau]})
    ns = script_namespace(generate(path))
    spec = load_spec(path)
    assert ns["PREDICTED_PEAK_BYTES"] == run_peak(spec).peak_bytes
    assert ns["PREDICTED_PEAK_BYTES"] > estimate(spec).peak_bytes  # the start's, thawed later


@pytest.mark.parametrize(
    ("sections", "words"),
    [
        (
            {"eval": None, "checkpoint": {"keep_best": True}},
            "checkpoint.keep_best act on validation losses: add an eval section",
        ),
        (
            {"data": {"source": "factory", "factory": "tiny_factory:dataset"}},
            "eval needs validation data, and data.source factory has none",
        ),
    ],
)
def test_generate_refuses_what_lint_reports(
    tmp_path: Path, sections: dict[str, Any], words: str
) -> None:
    from freezegen.generate import GenerateError, render_script
    from freezegen.spec import load_spec

    path = _spec(tmp_path, **{k: v for k, v in sections.items() if v is not None})
    if "eval" in sections:
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("eval:\n  every_steps: 2\n  max_batches: 3\n", ""))
    with pytest.raises(GenerateError, match=words):
        render_script(load_spec(path), path, tmp_path)
