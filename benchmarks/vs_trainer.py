"""Is the generated training script as fast as transformers' Trainer? (benchmarks/README.md)

The same tiny Llama-style model (built from a config: nothing is downloaded) trains on the same
synthetic tokens for the same steps three ways, in one run, on the CPU with one thread:

(a) the script ``freezegen generate`` writes, run as a user runs it (``python train.py``);
(b) transformers' ``Trainer``;
(c) a plain loop over Accelerate's ``Accelerator``.

All three start from the same initial weights (each is what the generated script builds after
seeding) and see the same micro-batches in the same order (the generated script's own data
stream, read in this process and handed to (b) with ``train_sampling_strategy="sequential"``
and to (c) as an unshuffled DataLoader), with AdamW at a constant learning rate and gradient
clipping at 1.0. So the loss curves should coincide up to floating-point summation order.
Each run is a fresh one-thread process, a child of this script: the generated script runs
there as ``python train.py`` runs it (``__main__``, unmodified, its own folder), the peers as
ordinary code; the tools take turns over rounds.

What is timed: one iteration of each training loop, from the end of one optimizer step to the
end of the next (fetching the batch, forward, backward, clipping, the step, the loop's own
logging), with the first ``--warmup`` steps left out; a run's speed is at its median step.
Process start-up, imports, model construction and the final checkpoint are not part of it:
they do not grow with the run, and a process's wall time would bury the loop under them. The
generated script's steps are the intervals between its own progress lines (``log_every: 1``),
stamped as it prints them; Trainer's are taken at its ``on_step_end`` callback; the Accelerate
loop's by the loop. The ratio is of CPU seconds of the process (one thread, no I/O waits in
these loops), so other load on a shared machine does not count; wall-clock is printed beside.
Goal: tokens/s(generated) / tokens/s(Trainer) >= 1.0 in CPU time (median over rounds).

Run with the project's venv:
    python benchmarks/vs_trainer.py [--steps 60] [--warmup 5] [--rounds 3] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import platform
import re
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from freezegen.generate import render_script  # noqa: E402
from freezegen.spec import load_spec  # noqa: E402

SPEED_GOAL = 1.0
# The last steps' mean loss of each tool against the generated script's: the runs share
# weights, data and order, so only summation order and Trainer's 4-digit logging differ.
LOSS_BAND = 0.02
TAIL = 10  # steps whose mean loss is compared
CONFIG = {
    "model_type": "llama",
    "vocab_size": 512,
    "hidden_size": 128,
    "num_hidden_layers": 8,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 384,
    "max_position_embeddings": 128,
    "bos_token_id": 1,
    "eos_token_id": 1,
}
MICRO_BATCH, SEQ_LEN, LR, SEED = 8, 64, 1.0e-3, 3
TOKENS_PER_STEP = MICRO_BATCH * SEQ_LEN
LOOPS = ("generated", "Trainer", "Accelerate")
_CHILD_LINE = "vs_trainer step "  # a child process's per-step line: this prefix, then JSON
# "step 12/60 | loss 5.1234 | lr 1.000e-03 | ..." (the generated script's progress line)
_STEP_LINE = re.compile(r"^step (\d+)/\d+ \| loss ([^ ]+) \|")


class Clock:
    """Wall-clock and CPU seconds (of this process) since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        """(wall, CPU) seconds since the clock was made or last lapped."""
        wall, cpu = time.perf_counter(), time.process_time()
        seconds = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return seconds


@dataclass
class Curve:
    """One training run: each step's loss, wall and CPU seconds, in step order."""

    losses: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, loss: float, seconds: tuple[float, float]) -> None:
        self.losses.append(loss)
        self.wall.append(seconds[0])
        self.cpu.append(seconds[1])

    def tokens_per_s(self, warmup: int, clock: str) -> float:
        """Tokens per second at the median step time (``clock``: "cpu" or "wall") after the
        first ``warmup`` steps: the median, so that a moment of other load does not count."""
        seconds = self.cpu if clock == "cpu" else self.wall
        return TOKENS_PER_STEP / statistics.median(seconds[warmup:])

    def tail_loss(self) -> float:
        """The mean loss of the last TAIL steps."""
        return statistics.fmean(self.losses[-TAIL:])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of timing")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool, alternating")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    # internal: one loop's run in a fresh process
    parser.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--script", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.steps < args.warmup + TAIL:
        parser.error(f"--steps must be at least --warmup + {TAIL}")
    return args


def write_run(folder: Path, steps: int) -> Path:
    """Write the model config, the spec and its generated script into ``folder``; return the
    script's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    spec = {
        "version": 1,
        "model": {"hf_config": "./config.json", "dropout": 0.0},
        "optimizer": {"name": "adamw", "lr": LR, "weight_decay": 0.0},
        "scheduler": {"name": "constant"},
        "batch": {"micro_batch_size": MICRO_BATCH, "grad_accum_steps": 1, "seq_len": SEQ_LEN},
        "train": {"max_steps": steps, "grad_clip": 1.0, "seed": SEED, "log_every": 1},
        "data": {"source": "synthetic"},
        "checkpoint": {"dir": "checkpoints", "every_steps": None},
    }
    spec_path = folder / "freezegen.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    script = folder / "train.py"
    script.write_text(render_script(load_spec(spec_path), spec_path, folder))
    return script


def reference(script: Path) -> tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
    """The generated script's initial weights and its micro-batches in its own order, one
    example per row, built by its own functions as its main() builds them."""
    ns: dict[str, Any] = runpy.run_path(str(script), run_name="vs_trainer")
    ns["seed_everything"](ns["SEED"])
    model = ns["build_model"]()
    stream = ns["DataStream"](ns["build_dataset"](model))
    examples = []
    for _ in range(ns["MAX_STEPS"]):
        for batch in stream.next_window():
            rows = batch["input_ids"].shape[0]
            examples += [{k: v[i] for k, v in batch.items()} for i in range(rows)]
    return copy.deepcopy(model.state_dict()), examples


def new_model(weights: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The benchmark's model from its config, with ``weights``, in training mode."""
    import transformers

    config = transformers.AutoConfig.for_model(**CONFIG)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.load_state_dict(weights)
    return model.float().train()


def run_loop(name: str, script: Path, reference_file: Path, steps: int, folder: Path) -> Curve:
    """Run one loop in a fresh one-thread process in ``folder``; its steps from the lines the
    child prints."""
    command = [sys.executable, __file__, "--child", name, "--steps", str(steps)]
    command += ["--warmup", "0", "--script", str(script), "--reference", str(reference_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout}\n{proc.stderr}")
    curve = Curve()
    for line in proc.stdout.splitlines():
        if line.startswith(_CHILD_LINE):
            record = json.loads(line[len(_CHILD_LINE) :])
            curve.add(record["loss"], (record["wall"], record["cpu"]))
    return curve


def run_child(args: argparse.Namespace) -> int:
    """The ``--child`` process: one loop's run, a line per step on stdout."""
    if args.child == "generated":
        curve = run_generated(args.script)
    else:
        weights, examples = torch.load(args.reference, weights_only=True)
        if args.child == "Trainer":
            curve = run_trainer(weights, examples, args.steps, Path.cwd())
        else:
            curve = run_accelerate(weights, examples, args.steps)
    for loss, wall, cpu in zip(curve.losses, curve.wall, curve.cpu, strict=True):
        print(_CHILD_LINE + json.dumps({"loss": loss, "wall": wall, "cpu": cpu}))
    return 0


class StampedLines(io.TextIOBase):
    """A stdout that keeps each line with the wall and CPU clocks when its newline came."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, float, str]] = []
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        wall, cpu = time.perf_counter(), time.process_time()
        *done, self._pending = (self._pending + text).split("\n")
        self.lines += [(wall, cpu, line) for line in done]
        return len(text)


def run_generated(script: Path) -> Curve:
    """Run the generated script as ``python train.py`` runs it (as ``__main__``, its own
    folder for checkpoints); each step's seconds are the time between its progress lines,
    stamped as they are printed (the first from the line before it: training starts)."""
    stamped = StampedLines()
    argv, sys.argv = sys.argv, [str(script)]
    try:
        with contextlib.redirect_stdout(stamped):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    curve = Curve()
    previous: tuple[float, float] | None = None
    for wall, cpu, line in stamped.lines:
        match = _STEP_LINE.match(line)
        if match and previous is not None:
            curve.add(float(match.group(2)), (wall - previous[0], cpu - previous[1]))
        previous = (wall, cpu)
    return curve


def run_trainer(weights, examples, steps: int, folder: Path) -> Curve:
    """transformers' Trainer over the same model, batches and order."""
    import transformers

    losses: list[float] = []
    laps: list[tuple[float, float]] = []

    class StepClock(transformers.TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.clock = Clock()

        def on_step_end(self, args, state, control, **kwargs):
            laps.append(self.clock.lap())

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    arguments = transformers.TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=1,
        max_steps=steps,
        learning_rate=LR,
        weight_decay=0.0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=SEED,
        dataloader_num_workers=0,
        disable_tqdm=True,
        train_sampling_strategy="sequential",
    )
    trainer = transformers.Trainer(
        model=new_model(weights),
        args=arguments,
        train_dataset=examples,
        data_collator=transformers.default_data_collator,
        callbacks=[StepClock()],
    )
    trainer.remove_callback(transformers.PrinterCallback)  # its log dicts, one per step
    trainer.train()
    curve = Curve()
    for loss, seconds in zip(losses, laps, strict=True):
        curve.add(loss, seconds)
    return curve


def run_accelerate(weights, examples, steps: int) -> Curve:
    """The loop Accelerate's examples show, over the same model, batches and order."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    accelerator = Accelerator(cpu=True)
    model = new_model(weights)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    loader = DataLoader(examples, batch_size=MICRO_BATCH, shuffle=False)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    curve = Curve()
    clock = Clock()
    for step, batch in enumerate(loader, start=1):
        loss = model(input_ids=batch["input_ids"], labels=batch["labels"], use_cache=False).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        curve.add(loss.item(), clock.lap())
        if step == steps:
            break
    return curve


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.child:
        return run_child(args)
    import accelerate
    import transformers

    curves: dict[str, list[Curve]] = {name: [] for name in LOOPS}
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        script = write_run(base / "spec", args.steps)
        reference_file = base / "reference.pt"
        torch.save(reference(script), reference_file)
        for r in range(args.rounds):
            for name in LOOPS if r % 2 == 0 else reversed(LOOPS):
                # a fresh folder each run: the script's resume: auto would continue the last
                folder = base / f"{name}-{r}"
                folder.mkdir()
                run_script = folder / "train.py"
                run_script.write_text(script.read_text())
                curve = run_loop(name, run_script, reference_file, args.steps, folder)
                if len(curve.losses) != args.steps:
                    raise SystemExit(f"{name}: {len(curve.losses)} steps seen of {args.steps}")
                curves[name].append(curve)

    speed = {
        (n, clock): statistics.median(c.tokens_per_s(args.warmup, clock) for c in runs)
        for n, runs in curves.items()
        for clock in ("cpu", "wall")
    }
    first = {n: runs[0] for n, runs in curves.items()}
    print(
        f"# vs_trainer: {date.today().isoformat()}, {platform.node()} ({platform.machine()}, "
        f"{platform.system()}), Python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, accelerate {accelerate.__version__}, "
        "1 CPU thread per run"
    )
    print(
        f"llama {CONFIG['num_hidden_layers']} blocks x hidden {CONFIG['hidden_size']}, vocab "
        f"{CONFIG['vocab_size']}, micro-batch {MICRO_BATCH} x seq {SEQ_LEN} (no accumulation), "
        f"AdamW lr {LR} constant, clip 1.0, synthetic tokens; {args.steps} steps, first "
        f"{args.warmup} untimed, {args.rounds} rounds; medians; load average {load:.1f}"
    )
    print()
    print("| loop       | tokens/s (CPU) | ms/step (CPU) | tokens/s (wall) | mean loss, last 10 |")
    print("|------------|----------------|---------------|-----------------|--------------------|")
    for name in LOOPS:
        cpu, wall = speed[name, "cpu"], speed[name, "wall"]
        ms = 1000 * TOKENS_PER_STEP / cpu
        tail = first[name].tail_loss()
        print(f"| {name:<10} | {cpu:>14,.0f} | {ms:>13.1f} | {wall:>15,.0f} | {tail:>18.4f} |")
    print()
    ok = True
    for peer in ("Trainer", "Accelerate"):
        ratio = speed["generated", "cpu"] / speed[peer, "cpu"]
        wall = speed["generated", "wall"] / speed[peer, "wall"]
        goal = ""
        if peer == "Trainer":
            ok &= ratio >= SPEED_GOAL
            goal = f" (goal >= {SPEED_GOAL}) {'PASS' if ratio >= SPEED_GOAL else 'MISS'}"
        print(f"generated / {peer}: {ratio:.3f} in CPU time{goal}; wall-clock {wall:.3f}")
    reference_curve = first["generated"]
    for name in ("Trainer", "Accelerate"):
        curve = first[name]
        gap = max(abs(a - b) for a, b in zip(reference_curve.losses, curve.losses, strict=True))
        tail_gap = abs(curve.tail_loss() / reference_curve.tail_loss() - 1)
        within = tail_gap <= LOSS_BAND
        ok &= within
        print(
            f"loss, {name} vs generated (same weights, batches and order): last-{TAIL}-step "
            f"means differ by {tail_gap:.2%} (band {LOSS_BAND:.0%}) "
            f"{'PASS' if within else 'MISS'}; largest per-step gap {gap:.4f}"
        )
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
