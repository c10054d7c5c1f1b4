"""benchmarks/vs_trainer.py's own machinery: its options, the shared starting point it builds
from the generated script, and the reading of that script's log. The benchmark run itself (the
three loops, timed) is not part of pytest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "vs_trainer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("_bench_vs_trainer", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_options_and_their_limits(bench, capsys):
    args = bench.parse_args([])
    assert (args.steps, args.warmup, args.rounds, args.strict, args.child) == (
        60,
        5,
        3,
        False,
        None,
    )
    with pytest.raises(SystemExit) as caught:
        bench.parse_args(["--steps", "12", "--warmup", "5"])
    assert caught.value.code == 2
    assert "--steps must be at least --warmup + 10" in capsys.readouterr().err


@pytest.mark.slow
def test_every_loop_starts_from_the_generated_scripts_weights_and_batches(bench, tmp_path):
    import torch

    script = bench.write_run(tmp_path / "spec", steps=2)
    weights, examples = bench.reference(script)
    assert len(examples) == 2 * bench.MICRO_BATCH
    assert examples[0]["input_ids"].shape == (bench.SEQ_LEN,)
    model = bench.new_model(weights)  # loads strictly: the same architecture
    assert model.config.num_hidden_layers == bench.CONFIG["num_hidden_layers"] and model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    # the generated script runs in a child process; its progress lines are its steps
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "train.py").write_text(script.read_text())
    curve = bench.run_loop("generated", folder / "train.py", tmp_path / "unused", 2, folder)
    assert len(curve.losses) == len(curve.wall) == len(curve.cpu) == 2
    assert all(s > 0 for s in curve.cpu) and all(loss > 0 for loss in curve.losses)
