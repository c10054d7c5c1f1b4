"""How fast is ``freezegen check``? Against torchfix on the same real files, in the same run.

(a) Model definitions: model folders of the installed transformers package (default: bert,
    gpt2, llama, mistral, qwen2, t5, whisper, vit).
(b) The whole installed transformers package (~2,900 files): ``freezegen check -j JOBS``.
    Goal: < 60 s.
(c) Training code: transformers' ``trainer.py`` and every ``*.py`` under ``--training-corpus DIR``
    (e.g. a folder of public training scripts; see benchmarks/realworld.py).
For (a) and (c): ``freezegen check`` vs ``torchfix``, both fresh subprocesses, both with ``-j 1``,
alternating. Goal: torchfix / freezegen >= 10 (freezegen at most 0.1x torchfix's time).

torchfix pins its own libcst, so it may live in another venv: ``--torchfix PATH`` (default:
the ``torchfix`` next to sys.executable, else the one on PATH). Run:
    python benchmarks/codemod_speed.py [--models bert,gpt2] [--training-corpus DIR]
        [--torchfix PATH] [--runs 3] [--jobs 2] [--strict]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = "bert,gpt2,llama,mistral,qwen2,t5,whisper,vit"
RATIO_GOAL = 10.0
FULL_GOAL_S = 60.0


def console_script(name: str, module: str) -> list[str]:
    """The console script next to sys.executable (same venv), else ``python -m module``."""
    candidate = Path(sys.executable).parent / name
    return [str(candidate)] if candidate.is_file() else [sys.executable, "-m", module]


def timed(cmd: list[str]) -> float:
    """Wall seconds of one fresh subprocess; exits if it crashed (findings are fine)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1) or "Traceback" in proc.stderr:
        sys.exit(f"benchmark: {' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-2000:]}")
    return elapsed


def torchfix_command(given: str | None) -> list[str]:
    """``--torchfix PATH``, else the one next to sys.executable, else the one on PATH."""
    if given:
        return [given]
    beside = Path(sys.executable).parent / "torchfix"
    found = str(beside) if beside.is_file() else shutil.which("torchfix")
    if found is None:
        sys.exit("benchmark: torchfix not found; pass --torchfix PATH (e.g. its own venv's)")
    return [found]


def compare(
    label: str, paths: list[Path], freezegen: list[str], torchfix: list[str], runs: int
) -> tuple[str, float]:
    """Alternating fresh runs of both tools on ``paths``; prints the medians and the ratio,
    returns the verdict and the ratio torchfix / freezegen."""
    ours, theirs = [], []
    for i in range(runs):
        pair = [(ours, freezegen), (theirs, torchfix)]
        for into, cmd in pair if i % 2 == 0 else pair[::-1]:
            into.append(timed([*cmd, *map(str, paths)]))
    ratio = statistics.median(theirs) / statistics.median(ours)
    verdict = "PASS" if ratio >= RATIO_GOAL else "MISS"
    print(
        f"    freezegen check {statistics.median(ours):.2f} s, torchfix "
        f"{statistics.median(theirs):.2f} s (medians of {runs}): torchfix/freezegen "
        f"= {ratio:.1f}x (freezegen at {1 / ratio:.3f}x)  goal >= {RATIO_GOAL:.0f}x  {verdict}"
        f"  [{label}]"
    )
    return verdict, ratio


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        sys.exit(f"benchmark: {name} is not installed in this venv")
    return Path(spec.origin).parent


def count(paths: list[Path]) -> tuple[int, int]:
    files = [f for p in paths for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p])]
    return len(files), sum(f.read_bytes().count(b"\n") for f in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="comma-separated model folders")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per tool")
    parser.add_argument("--jobs", type=int, default=2, help="-j for the whole-package run")
    parser.add_argument(
        "--training-corpus", type=Path, help="folder of training scripts for (c), with trainer.py"
    )
    parser.add_argument("--torchfix", help="the torchfix executable (default: see the module)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a MISS")
    args = parser.parse_args()
    if args.training_corpus is not None and not args.training_corpus.is_dir():
        sys.exit(f"benchmark: no such folder: {args.training_corpus}")

    transformers = package_dir("transformers")
    folders = [transformers / "models" / m for m in args.models.split(",")]
    missing = [f for f in folders if not f.is_dir()]
    if missing:
        sys.exit(f"benchmark: no such model folder: {missing[0]}")
    freezegen = [*console_script("freezegen", "freezegen"), "check", "--no-config", "-j", "1"]
    torchfix = [*torchfix_command(args.torchfix), "-j", "1"]
    print(
        f"codemod_speed.py {datetime.date.today()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cpus, load average "
        f"{os.getloadavg()[0]:.1f}\n    freezegen: {' '.join(freezegen)}\n"
        f"    torchfix:  {' '.join(torchfix)}"
    )
    files, lines = count(folders)
    print(
        f"(a) model definitions: {files} files, {lines} lines in transformers/models/"
        f"{{{args.models}}}"
    )
    verdict_a, ratio_a = compare("model definitions", folders, freezegen, torchfix, args.runs)

    files, lines = count([transformers])
    full = timed([*freezegen[:-2], "-j", str(args.jobs), str(transformers)])
    verdict_b = "PASS" if full < FULL_GOAL_S else "MISS"
    print(
        f"(b) whole transformers package: {files} files, {lines} lines in {full:.1f} s "
        f"(-j {args.jobs}, {os.cpu_count()} cpus)  goal < {FULL_GOAL_S:.0f} s  {verdict_b}"
    )

    training = [transformers / "trainer.py"]
    if args.training_corpus is not None:
        training.append(args.training_corpus)
    files, lines = count(training)
    where = f" + {args.training_corpus}" if args.training_corpus else " (no --training-corpus)"
    print(f"(c) training code: {files} files, {lines} lines in transformers/trainer.py{where}")
    verdict_c, ratio_c = compare("training code", training, freezegen, torchfix, args.runs)
    print(
        f"ratios torchfix/freezegen: model definitions {ratio_a:.1f}x, training code "
        f"{ratio_c:.1f}x (goal >= {RATIO_GOAL:.0f}x on both)"
    )
    return 1 if args.strict and "MISS" in (verdict_a, verdict_b, verdict_c) else 0


if __name__ == "__main__":
    raise SystemExit(main())
