"""How fast is ``freezegen check``? Against torchfix on the same real files, in the same run.

(a) Model folders of the installed transformers package (default: bert, gpt2, llama, mistral,
    qwen2, t5, whisper, vit): ``freezegen check`` vs ``torchfix``, both fresh subprocesses,
    both with ``-j 1``, alternating. Goal: torchfix / freezegen >= 10.
(b) The whole installed transformers package (~2,900 files): ``freezegen check -j JOBS``.
    Goal: < 60 s.

Needs torchfix in the venv (pip install -c constraints.txt torchfix). Run:
    python benchmarks/codemod_speed.py [--models bert,gpt2] [--runs 3] [--jobs 2] [--strict]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
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
    parser.add_argument("--strict", action="store_true", help="exit 1 on a MISS")
    args = parser.parse_args()

    transformers = package_dir("transformers")
    folders = [transformers / "models" / m for m in args.models.split(",")]
    missing = [f for f in folders if not f.is_dir()]
    if missing:
        sys.exit(f"benchmark: no such model folder: {missing[0]}")
    freezegen = [*console_script("freezegen", "freezegen"), "check", "--no-config", "-j", "1"]
    torchfix = [*console_script("torchfix", "torchfix"), "-j", "1"]
    files, lines = count(folders)
    print(f"(a) {files} files, {lines} lines in transformers/models/{{{args.models}}}")
    ours, theirs = [], []
    for i in range(args.runs):
        pair = [(ours, freezegen), (theirs, torchfix)]
        for into, cmd in pair if i % 2 == 0 else pair[::-1]:
            into.append(timed([*cmd, *map(str, folders)]))
    ratio = statistics.median(theirs) / statistics.median(ours)
    verdict_a = "PASS" if ratio >= RATIO_GOAL else "MISS"
    print(
        f"    freezegen check {statistics.median(ours):.2f} s, torchfix "
        f"{statistics.median(theirs):.2f} s (medians of {args.runs}): torchfix/freezegen "
        f"= {ratio:.1f}x  goal >= {RATIO_GOAL:.0f}x  {verdict_a}"
    )

    files, lines = count([transformers])
    full = timed([*freezegen[:-2], "-j", str(args.jobs), str(transformers)])
    verdict_b = "PASS" if full < FULL_GOAL_S else "MISS"
    print(
        f"(b) whole transformers package: {files} files, {lines} lines in {full:.1f} s "
        f"(-j {args.jobs}, {os.cpu_count()} cpus)  goal < {FULL_GOAL_S:.0f} s  {verdict_b}"
    )
    return 1 if args.strict and "MISS" in (verdict_a, verdict_b) else 0


if __name__ == "__main__":
    raise SystemExit(main())
