"""How fast is ``freezegen lint``? Two numbers, each against a goal (see benchmarks/README.md).

(a) Cold start: ``freezegen lint SPEC`` vs ``check-jsonschema --schemafile
    schemas/freezegen.schema.json SPEC``, each a fresh subprocess, run in alternating pairs.
    Goal: median(freezegen / check-jsonschema) <= 1.0 (the project's decision: one validator,
    the pydantic models; 0.6 would need a second one).
(b) Scaling: one ``freezegen lint`` call over a folder of 100 copies of SPEC vs one call over
    SPEC alone. Goal: ratio < 2 (start-up, not per-file work, dominates).

Run from anywhere with the project's venv:  python benchmarks/lint_speed.py
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = ROOT / "examples" / "gpt2-medium-freezing" / "freeze-6.freezegen.yaml"
SCHEMA = ROOT / "schemas" / "freezegen.schema.json"
COLD_GOAL = 1.0
SCALE_GOAL = 2.0


def console_script(name: str, module: str) -> list[str]:
    """The console script next to sys.executable (same venv), else ``python -m module``."""
    bindir = Path(sys.executable).parent
    for candidate in (bindir / name, bindir / f"{name}.exe"):
        if candidate.is_file():
            return [str(candidate)]
    return [sys.executable, "-m", module]


# Both tools run as a user's would: with bytecode caching. pip compiled check-jsonschema at
# install time, while an editable freezegen is compiled on first import; with
# PYTHONDONTWRITEBYTECODE set (as in some sandboxes) freezegen would recompile every module on
# every run and the comparison would measure the compiler. The warm-up pairs write the caches.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"NO_COLOR": "1"}


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Wall seconds of one fresh subprocess; fails loudly if it did not do its job."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(
            f"benchmark: {' '.join(cmd)} exited {proc.returncode}\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return elapsed


def alternate(
    a: list[str], b: list[str], pairs: int, warmup: int, ok: tuple[int, ...] = (0,)
) -> tuple[list[float], list[float]]:
    """Run a and b in alternating pairs (order flipped every pair) after `warmup` pairs."""
    for _ in range(warmup):
        timed(a, ok), timed(b, ok)
    ta, tb = [], []
    for i in range(pairs):
        if i % 2:
            tb.append(timed(b, ok))
            ta.append(timed(a, ok))
        else:
            ta.append(timed(a, ok))
            tb.append(timed(b, ok))
    return ta, tb


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cold_start(freezegen: list[str], spec: Path, pairs: int, warmup: int) -> bool:
    check = console_script("check-jsonschema", "check_jsonschema")
    fg_cmd = [*freezegen, "lint", str(spec)]
    cj_cmd = [*check, "--schemafile", str(SCHEMA), str(spec)]
    fg, cj = alternate(fg_cmd, cj_cmd, pairs, warmup)
    ratios = [f / c for f, c in zip(fg, cj, strict=True)]
    ratio = statistics.median(ratios)
    print(f"(a) cold start, {pairs} alternating pairs after {warmup} warm-up pairs, {spec.name}")
    print(
        f"    freezegen lint     median {ms(statistics.median(fg))}  "
        f"(min {ms(min(fg))}, max {ms(max(fg))})"
    )
    print(
        f"    check-jsonschema   median {ms(statistics.median(cj))}  "
        f"(min {ms(min(cj))}, max {ms(max(cj))})"
    )
    print(
        f"    median ratio freezegen/check-jsonschema = {ratio:.2f}  "
        f"(goal <= {COLD_GOAL})  {verdict(ratio <= COLD_GOAL)}"
    )
    return ratio <= COLD_GOAL


def scaling(freezegen: list[str], spec: Path, copies: int, runs: int, warmup: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="freezegen-bench-") as tmp:
        many = Path(tmp) / "many"
        many.mkdir()
        for i in range(copies):
            shutil.copy2(spec, many / f"spec-{i:03d}.freezegen.yaml")
        one = Path(tmp) / "one"
        one.mkdir()
        shutil.copy2(spec, one / "freezegen.yaml")
        # Copies lint like the original; exit 1 is fine as long as both sides agree.
        expected = subprocess.run(
            [*freezegen, "lint", str(spec)], cwd=ROOT, capture_output=True
        ).returncode
        t_many, t_one = alternate(
            [*freezegen, "lint", str(many)],
            [*freezegen, "lint", str(one)],
            runs,
            warmup,
            ok=(expected,),
        )
    ratio = statistics.median(t_many) / statistics.median(t_one)
    print(f"(b) scaling, {runs} alternating runs: one call over {copies} copies vs one spec")
    print(
        f"    {copies:3d} specs  median {ms(statistics.median(t_many))}  "
        f"({ms((statistics.median(t_many) - statistics.median(t_one)) / max(copies - 1, 1))}"
        " per extra spec)"
    )
    print(f"      1 spec   median {ms(statistics.median(t_one))}")
    print(
        f"    ratio {copies} specs / 1 spec = {ratio:.2f}  "
        f"(goal < {SCALE_GOAL})  {verdict(ratio < SCALE_GOAL)}"
    )
    return ratio < SCALE_GOAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="spec to lint")
    parser.add_argument("--pairs", type=int, default=15, help="timed pairs for (a)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed pairs first")
    parser.add_argument("--copies", type=int, default=100, help="spec copies for (b)")
    parser.add_argument("--runs", type=int, default=7, help="timed pairs for (b)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on a MISS")
    args = parser.parse_args()

    spec = args.spec.resolve()
    freezegen = console_script("freezegen", "freezegen")
    print(f"python {platform.python_version()} ({sys.executable}), {os.cpu_count()} CPUs")
    print(f"freezegen: {' '.join(freezegen)}")
    ok_a = cold_start(freezegen, spec, args.pairs, args.warmup)
    ok_b = scaling(freezegen, spec, args.copies, args.runs, args.warmup)
    return 1 if args.strict and not (ok_a and ok_b) else 0


if __name__ == "__main__":
    sys.exit(main())
