"""How far off are the memory estimators people use? freezegen's analytic and traced peaks beside
accelerate's and DeepSpeed's figures, at full model size, each one's error against traced.

    . .venv/bin/activate
    python benchmarks/estimate_accuracy.py            # ~1-2 min on a laptop CPU (all fake tensors)
    python benchmarks/estimate_accuracy.py --no-trace # analytic and peers only, seconds
    python benchmarks/estimate_accuracy.py --only gpt2-medium   # cases whose name contains it

The reference is the traced estimate: the real transformers model and two real AdamW steps on
fake tensors, measured by freezegen's storage tracker (peak of step 2, 512-byte rounding), i.e.
what ``torch.cuda.max_memory_allocated()`` reports; benchmarks/gpu_truth.py checks that claim on
a GPU. Peers, computed in this run:

* accelerate: ``accelerate.commands.estimate.estimate_training_usage(model_bytes, dtype)`` with
  ``model_bytes`` = parameters x 4 B (its empty fp32 model), the "Training using Adam" figure
  = the largest value of the returned dict (what ``accelerate estimate-memory`` prints). When
  accelerate is not installed the documented rule ("4x the model size in the dtype for Adam
  training") is used and the column says so.
* DeepSpeed: model states only, 16 bytes per parameter for mixed-precision Adam (fp16 weights
  and gradients, fp32 master weights, momentum and variance: 2+2+12), reimplemented from the
  ZeRO paper / DeepSpeed's memory docs; ``estimate_zero2_model_states_mem_needs(total_params,
  cpu_offload=False)`` on one GPU says 4 + 16 = 20 bytes per parameter (printed as a note).

No peer models freezing, the batch, the sequence length or attention: their figure for a case is
the same whatever those are. Nor adapters or a 4-bit base (the LoRA / QLoRA rows): accelerate's
training figure and DeepSpeed's model states are those of fully training the whole model, which
is what each prints for it (accelerate's training estimate has no int4 entry). Figures are in
GB (10^9 bytes), like the article and accelerate.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from freezegen.memory import estimate  # noqa: E402
from freezegen.spec.models import Spec  # noqa: E402

GB = 1e9
# The widely read article's table for GPT-2 Medium, batch 16 (see issue 3).
ARTICLE_GB = {0: 4.5, 16: 1.9}


@dataclass(frozen=True)
class Case:
    name: str
    spec: Spec
    note: str = ""


def _spec(
    preset: str,
    *,
    precision: str = "fp32",
    batch: int = 16,
    seq: int = 512,
    attention: str = "sdpa",
    head: str = "causal-lm",
    freeze: dict[str, Any] | None = None,
    checkpointing: Any = False,
    optimizer: dict[str, Any] | None = None,
    gpu: str = "H100-80GB",
    adapter: dict[str, Any] | None = None,
    quantization: str | None = None,
) -> Spec:
    extra: dict[str, Any] = {}
    if adapter is not None:
        extra["adapter"] = adapter
    if quantization is not None:
        extra["quantization"] = {"weights": quantization, "compute": "bf16"}
    return Spec.model_validate(
        {
            **extra,
            "version": 1,
            "model": {"preset": preset, "head": head, "attention": attention},
            "freeze": freeze or {},
            "precision": precision,
            "optimizer": {"name": "adamw", "weight_decay": 0.01, **(optimizer or {})},
            "batch": {"micro_batch_size": batch, "seq_len": seq},
            "activation_checkpointing": checkpointing,
            "hardware": {"gpu": gpu},
        }
    )


def _gpt2_freeze(n: int) -> dict[str, Any]:
    return {"embeddings": n > 0, "layers": {"first": n}} if n else {}


def cases() -> list[Case]:
    """The full-size matrix (also used, filtered to what fits, by gpu_truth.py)."""
    out = []
    for attention in ("sdpa", "eager"):
        for n in (0, 6, 12):
            out.append(
                Case(
                    f"gpt2-medium fp32 16x512 {attention} freeze {n}",
                    _spec("gpt2-medium", attention=attention, freeze=_gpt2_freeze(n)),
                )
            )
    out += [
        Case(
            "gpt2-medium fp32 16x512 sdpa freeze 16",
            _spec("gpt2-medium", freeze=_gpt2_freeze(16)),
            "the article's 'two thirds frozen'",
        ),
        Case("gpt2 fp16 8x1024 eager", _spec("gpt2", precision="fp16", batch=8, seq=1024,
                                             attention="eager")),
        Case(
            "bert-base cls fp16 32x128 freeze 6",
            _spec("bert-base-uncased", precision="fp16", batch=32, seq=128,
                  head="sequence-classification", freeze={"embeddings": True,
                                                          "layers": {"first": 6}}, gpu="T4"),
        ),
        Case(
            "bert-base cls fp32 32x512 full",
            _spec("bert-base-uncased", batch=32, head="sequence-classification", gpu="T4"),
        ),
        Case(
            "qwen2-0.5b bf16 8x1024 full",
            _spec("qwen2-0.5b", precision="bf16", batch=8, seq=1024),
        ),
        Case(
            "tinyllama-1.1b bf16-pure 8x2048 ckpt every-2",
            _spec("tinyllama-1.1b", precision="bf16-pure", batch=8, seq=2048,
                  checkpointing={"layers": "every-2"}, optimizer={"implementation": "fused"}),
        ),
        Case(
            "llama-2-7b bf16 4x1024 ckpt freeze 24",
            _spec("llama-2-7b", precision="bf16", batch=4, seq=1024, checkpointing=True,
                  freeze={"embeddings": True, "layers": {"first": 24}}),
        ),
        Case(
            "llama-2-7b bf16-pure 4x2048 ckpt freeze 16",
            _spec("llama-2-7b", precision="bf16-pure", batch=4, seq=2048, checkpointing=True,
                  freeze={"embeddings": True, "layers": {"first": 16}}, gpu="H200"),
        ),
        # LoRA (peft) on a frozen base, and QLoRA (the base's block linears in nf4).
        Case(
            "qwen2-1.5b lora bf16 8x1024 r16 q,v",
            _spec("qwen2-1.5b", precision="bf16", batch=8, seq=1024,
                  adapter={"r": 16, "targets": ["q_proj", "v_proj"]}),
        ),
        Case(
            "llama-2-7b lora bf16 4x1024 ckpt r16 all-linear",
            _spec("llama-2-7b", precision="bf16", batch=4, seq=1024, checkpointing=True,
                  adapter={"r": 16, "targets": "all-linear"}),
        ),
        Case(
            "llama-3-8b qlora nf4 bf16 1x2048 ckpt r16 all-linear",
            _spec("llama-3-8b", precision="bf16", batch=1, seq=2048, checkpointing=True,
                  adapter={"r": 16, "targets": "all-linear"}, quantization="nf4", gpu="RTX-4090"),
            "the question: does QLoRA on Llama-3-8B at 2,048 tokens fit a 24 GB card?",
        ),
        Case(
            "llama-3-8b qlora nf4 bf16 1x2048 r16 dropout 0.05",
            _spec("llama-3-8b", precision="bf16", batch=1, seq=2048,
                  adapter={"r": 16, "dropout": 0.05}, quantization="nf4", gpu="RTX-4090"),
        ),
        Case(
            "mistral-7b qlora nf4 bf16 4x1024 ckpt r64",
            _spec("mistral-7b", precision="bf16", batch=4, seq=1024, checkpointing=True,
                  adapter={"r": 64, "alpha": 16}, quantization="nf4", gpu="A10G"),
        ),
    ]  # fmt: skip
    return out


def accelerate_training_bytes(spec: Spec, total_params: int) -> tuple[int, str]:
    """accelerate's 'Training using Adam' figure for the spec's model and precision."""
    dtype = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "bf16-pure": "bfloat16"}[
        spec.precision
    ]
    model_bytes = total_params * 4
    try:
        from accelerate.commands.estimate import estimate_training_usage
    except ImportError:
        size = model_bytes if dtype == "float32" else model_bytes // 2
        return 4 * size, "rule (accelerate not installed): 4x model size in dtype"
    usage = estimate_training_usage(model_bytes, dtype)
    return max(usage.values()), "accelerate.commands.estimate.estimate_training_usage"


def deepspeed_model_states_bytes(total_params: int) -> int:
    """Mixed-precision Adam model states, no ZeRO partitioning: 16 bytes per parameter."""
    return 16 * total_params


def deepspeed_zero2_gpu_bytes(total_params: int, gpus: int = 1) -> int:
    """DeepSpeed's estimate_zero2_model_states_mem_needs(..., cpu_offload=False) GPU figure."""
    return 4 * total_params + int(16 * total_params / gpus)


def _err(value: float, ref: float | None) -> str:
    if not ref:
        return "-"
    return f"{100 * (value - ref) / ref:+.1f}%"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = [
        "| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                          enumerate(zip(r, widths, strict=True))) + " |"
        for r in rows
    ]  # fmt: skip
    return "\n".join([line, sep, *body])


def run(selected: list[Case], trace: bool) -> tuple[str, dict[str, tuple[int, int | None]]]:
    rows, peaks, acc_source = [], {}, ""
    for case in selected:
        analytic = estimate(case.spec, "analytic")
        traced = None
        t0 = time.perf_counter()
        if trace:
            traced = estimate(case.spec, "traced")
        seconds = time.perf_counter() - t0
        ref = traced.peak_bytes if traced else None
        total = analytic.total_parameters
        acc, acc_source = accelerate_training_bytes(case.spec, total)
        ds = deepspeed_model_states_bytes(total)
        peaks[case.name] = (analytic.peak_bytes, ref)
        rows.append(
            [
                case.name,
                f"{analytic.peak_bytes / GB:.2f}",
                f"{ref / GB:.2f}" if ref else "-",
                _err(analytic.peak_bytes, ref),
                f"{acc / GB:.2f}",
                _err(acc, ref),
                f"{ds / GB:.2f}",
                _err(ds, ref),
                f"{seconds:.1f}" if trace else "-",
            ]
        )
    headers = ["case", "analytic GB", "traced GB", "err", "accelerate GB", "err",
               "DeepSpeed GB", "err", "trace s"]  # fmt: skip
    errors = [abs(a - r) / r for a, r in peaks.values() if r]
    text = _table(headers, rows)
    text += (
        f"\n\naccelerate column: {acc_source} (max of its dict; 'Training using Adam')."
        "\nDeepSpeed column: model states 16 B/param (mixed-precision Adam, no ZeRO); its "
        "estimate_zero2_model_states_mem_needs(cpu_offload=False) on one GPU gives 20 B/param."
        "\nerr = (estimator - traced) / traced. Peaks exclude overhead (CUDA context, cuBLAS, "
        "fragmentation), as max_memory_allocated does."
    )
    if errors:
        text += (
            f"\nanalytic vs traced: max |err| {100 * max(errors):.1f}%, "
            f"mean |err| {100 * sum(errors) / len(errors):.1f}% over {len(errors)} cases"
        )
    return text, peaks


def article_comparison(trace: bool) -> str:
    rows = []
    for n in (0, 6, 12, 16):
        spec = _spec("gpt2-medium", freeze=_gpt2_freeze(n))
        analytic = estimate(spec, "analytic")
        traced = estimate(spec, "traced") if trace else None
        acc, _ = accelerate_training_bytes(spec, analytic.total_parameters)
        article = ARTICLE_GB.get(n)
        label = {0: "0 (full fine-tuning)", 16: "16 (two thirds frozen)"}.get(n, str(n))
        rows.append(
            [
                label,
                f"{analytic.trainable_parameters / 1e6:.0f}M",
                f"{analytic.peak_bytes / GB:.1f}",
                f"{traced.peak_bytes / GB:.1f}" if traced else "-",
                f"{(traced or analytic).required_bytes / GB:.1f}",
                f"{article:.1f}" if article else "-",
                f"{acc / GB:.1f}",
            ]
        )
    headers = ["frozen blocks (of 24)", "trainable", "freezegen analytic GB",
               "freezegen traced GB", "required GB (+overhead)", "article GB",
               "accelerate GB"]  # fmt: skip
    return (
        "GPT-2 Medium, AdamW, fp32, batch 16 x 512, sdpa (embeddings frozen with the blocks):\n"
        + _table(headers, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-trace", action="store_true", help="skip the traced reference")
    parser.add_argument("--only", default="", help="only cases whose name contains this")
    args = parser.parse_args(argv)
    selected = [c for c in cases() if args.only in c.name]
    if not selected:
        print(f"no case matches {args.only!r}", file=sys.stderr)
        return 2
    import torch

    try:
        import accelerate

        acc_version = f"accelerate {accelerate.__version__}"
    except ImportError:
        acc_version = "accelerate not installed"
    print(
        f"# estimate_accuracy: {datetime.date.today().isoformat()}, {platform.node()} "
        f"({platform.machine()}, {platform.system()}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, {acc_version}\n"
    )
    t0 = time.perf_counter()
    text, _ = run(selected, trace=not args.no_trace)
    print(text + "\n")
    if not args.only:
        print(article_comparison(trace=not args.no_trace) + "\n")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
