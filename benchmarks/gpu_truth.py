"""Ground truth on a real GPU: ``torch.cuda.max_memory_allocated()`` of a real training step
beside freezegen's analytic and traced estimates, over estimate_accuracy.py's matrix.

    python benchmarks/gpu_truth.py              # needs one CUDA GPU (80-140 GB); < 5 minutes
    python benchmarks/gpu_truth.py --dry-run    # no GPU: build the cases, show the plan
    python benchmarks/gpu_truth.py --only llama # cases whose name contains it

Each case builds the model with real (random) weights on the GPU, applies the spec's freezing,
precision and checkpointing the way the traced estimator does, and runs two optimizer steps
(AdamW, autocast + GradScaler for fp16, gradient clipping, zero_grad(set_to_none=True)). The peak
statistics are reset after step 1, so the figure is the steady-state step 2, which is what
``peak_bytes`` predicts. Cases whose analytic requirement does not fit the free memory are
skipped and said so. Not part of CI: record the output in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from estimate_accuracy import GB, Case, cases  # noqa: E402

from freezegen.memory import estimate  # noqa: E402

NO_CUDA = (
    "gpu_truth: no CUDA device is available (torch.cuda.is_available() is False); run it on a "
    "machine with one GPU, or use --dry-run to check the case list"
)


def plan(selected: list[Case]) -> list[tuple[Case, int]]:
    """Each case with its analytic required bytes (peak + overhead), validated on the CPU."""
    return [(case, estimate(case.spec, "analytic").required_bytes) for case in selected]


def measure(case: Case) -> int:
    """Run two real optimizer steps of ``case`` on the GPU; return step 2's allocated peak."""
    import torch

    from freezegen.memory import traced as tr

    spec = case.spec
    with tr._quiet_transformers(), torch.device("cuda"):
        model, arch = tr.build_model(spec)
    model.train()
    tr._apply_freeze(model, spec, arch)
    if spec.precision == "bf16-pure":
        model.to(torch.bfloat16)
    tr._apply_checkpointing(model, spec)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = tr._optimizer(spec, trainable)
    low = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(spec.precision)
    scaler = torch.amp.GradScaler("cuda") if spec.precision == "fp16" else None
    b, s = spec.batch.micro_batch_size, spec.batch.seq_len
    vocab = arch.vocab_size if arch else 2
    classify = spec.model.head == "sequence-classification"
    ids = torch.randint(0, vocab, (b, s), device="cuda")
    labels = torch.zeros(b, dtype=torch.long, device="cuda") if classify else ids
    extra = {"use_cache": False} if tr._accepts(model, "use_cache") else {}
    window = spec.batch.grad_accum_steps
    peak = 0
    for step in range(2):
        if step == 1:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(window):
            autocast = (
                torch.autocast("cuda", dtype=low) if low is not None else contextlib.nullcontext()
            )
            with autocast:
                loss = model(input_ids=ids, labels=labels, **extra).loss
            loss = loss / window
            (scaler.scale(loss) if scaler else loss).backward()
            del loss
        if scaler:
            scaler.unscale_(optimizer)
        if spec.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(trainable, spec.train.grad_clip)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del model, optimizer, trainable, ids, labels
    gc.collect()
    torch.cuda.empty_cache()
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="no GPU: print the plan only")
    parser.add_argument("--only", default="", help="only cases whose name contains this")
    parser.add_argument("--no-trace", action="store_true", help="skip the traced estimates")
    args = parser.parse_args(argv)
    # measure() trains the base as the freeze section says; adapter and quantized-base runs
    # (peft, bitsandbytes) are not measured here yet, rather than measured as another run.
    selected = [
        c
        for c in cases()
        if args.only in c.name and c.spec.adapter is None and c.spec.quantization is None
    ]
    if not selected:
        print(f"gpu_truth: no case matches {args.only!r}", file=sys.stderr)
        return 2
    planned = plan(selected)
    if args.dry_run:
        for case, required in planned:
            print(f"{case.name:<46} analytic required {required / GB:7.2f} GB")
        print(f"{len(planned)} cases; run without --dry-run on a CUDA machine to measure them")
        return 0
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    name = torch.cuda.get_device_name()
    print(
        f"# gpu_truth: {datetime.date.today().isoformat()}, {platform.node()}, {name} "
        f"({total / GB:.0f} GB), torch {torch.__version__}, CUDA {torch.version.cuda}\n"
    )
    header = (
        f"| {'case':<46} | measured GB | analytic GB | err | traced GB | err | seconds |\n"
        f"|{'-' * 48}|-------------|-------------|-----|-----------|-----|---------|"
    )
    print(header, flush=True)
    t_all = time.perf_counter()
    for case, required in planned:
        if required > free:
            print(
                f"| {case.name:<46} | skipped: needs {required / GB:.1f} GB, {free / GB:.1f} free"
            )
            continue
        t0 = time.perf_counter()
        try:
            measured = measure(case)
        except torch.cuda.OutOfMemoryError:
            gc.collect()
            torch.cuda.empty_cache()
            print(f"| {case.name:<46} | out of memory |")
            continue
        seconds = time.perf_counter() - t0
        analytic = estimate(case.spec, "analytic").peak_bytes
        traced = None if args.no_trace else estimate(case.spec, "traced").peak_bytes

        def err(x: int | None, m: int = measured) -> str:
            return "-" if x is None else f"{100 * (x - m) / m:+.1f}%"

        traced_gb = "-" if traced is None else f"{traced / GB:.2f}"
        print(
            f"| {case.name:<46} | {measured / GB:11.2f} | {analytic / GB:11.2f} | "
            f"{err(analytic)} | {traced_gb:>9} | {err(traced)} | {seconds:7.1f} |",
            flush=True,
        )
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
