"""How fast is ``freezegen fit``? Against what a user does without it, in the same run.

Without ``fit`` the answer comes from trying values: ``freezegen estimate --sweep
batch.micro_batch_size=1,2,...`` over every candidate (or launching runs until one OOMs).
This times, in one process, ``fit()`` (gallop + bisection at the strongest maths-keeping knobs,
then the cheapest knobs for the winner) against the same question answered by a sweep: every
candidate value, each with the cheapest maths-keeping fit (what a user would have to try by
hand), on 7B-class specs. Goal: a whole ``fit`` under 1 s; the ratio is printed.
Run: python benchmarks/fit_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

from freezegen.memory.fit import MICRO, SEQ, _candidates, _set, fit
from freezegen.memory.fixes import cheapest_safe_fit
from freezegen.spec import load_text

CASES = {
    "llama-2-7b bf16, top 8 blocks, A100-80GB: maximize micro_batch_size (global 64)": (
        "version: 1\nmodel: {preset: llama-2-7b}\nprecision: bf16\n"
        "freeze: {embeddings: true, layers: {first: 24}}\n"
        "batch: {micro_batch_size: 4, grad_accum_steps: 16, seq_len: 2048}\n"
        "hardware: {gpu: A100-80GB}\n",
        [MICRO],
    ),
    "llama-3-8b bf16, top 4 blocks, H100-80GB: maximize seq_len": (
        "version: 1\nmodel: {preset: llama-3-8b}\nprecision: bf16\n"
        "freeze: {embeddings: true, layers: {first: 28}}\n"
        "batch: {micro_batch_size: 1, grad_accum_steps: 8, seq_len: 1024}\n"
        "hardware: {gpu: H100-80GB}\n",
        [SEQ],
    ),
}


def _sweep(spec, key: str) -> int | None:
    """The brute-force answer: every candidate, each with its cheapest maths-keeping fit."""
    best = None
    candidates = _candidates(spec, key, {key}, 1)
    kept = key == MICRO
    for value in candidates if key == MICRO else candidates[:: max(len(candidates) // 64, 1)]:
        if cheapest_safe_fit(_set(spec, key, value, kept), {key}) is not None:
            best = value
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"fit_speed.py {datetime.date.today()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cpus, load average {load:.1f}"
    )
    for name, (text, keys) in CASES.items():
        spec = load_text(text, "bench.yaml").spec
        fits, sweeps = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            found = fit(spec, keys)
            fits.append(time.perf_counter() - t)
            t = time.perf_counter()
            brute = _sweep(spec, keys[0])
            sweeps.append(time.perf_counter() - t)
        f, s = statistics.median(fits), statistics.median(sweeps)
        verdict = "PASS" if f < 1.0 else "MISS"
        print(f"{name}")
        print(
            f"    fit {f:.3f} s ({len(found.trials)} values tried, best {found.best[keys[0]]}), "
            f"sweep {s:.3f} s (best {brute}; seq_len sampled at 64 points): sweep/fit = "
            f"{s / f:.1f}x  goal fit < 1 s  {verdict}"
        )


if __name__ == "__main__":
    main()
