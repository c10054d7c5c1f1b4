"""What does the generated training loop cost, and what does freezing save? (benchmarks/README.md)

(a) Overhead: the steady-state steps/s of a script ``freezegen generate`` wrote vs a minimal
    hand-written loop doing the same work (same model, same initial weights, same batches,
    AdamW, clipping) in the same process. The generated script is imported, not run: its own
    ``Thawing.thaw`` + ``train_step`` are timed, exactly the body of its main loop. The two loops
    take turns in rounds after a warm-up; the ratio is of the median step times. Steps are timed
    in CPU seconds of this process (one thread), so other load on a shared machine does not
    count; wall-clock medians are printed beside them.
    Goal: steps/s(generated) / steps/s(hand-written) >= 0.97 (CPU time).
(b) Freezing: the generated script's step time with the embeddings and the bottom half of the
    blocks frozen vs nothing frozen (backward stops at the first trainable block), and with the
    bottom half frozen but the embeddings trainable (backward must run through every block to
    reach them), as savings against nothing frozen.

CPU, one thread, a tiny Llama-style model. Run with the project's venv:
    python benchmarks/train_overhead.py [--rounds 7] [--steps 6] [--strict]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import runpy
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
import torch.nn.functional as F
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from freezegen.generate import render_script  # noqa: E402
from freezegen.spec import load_spec  # noqa: E402

OVERHEAD_GOAL = 0.97
LAYERS = 8
CONFIG = {
    "model_type": "llama",
    "vocab_size": 512,
    "hidden_size": 128,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 384,
    "max_position_embeddings": 128,
    "bos_token_id": 1,
    "eos_token_id": 1,
}


def generated_script(folder: Path, freeze: dict[str, Any]) -> dict[str, Any]:
    """Write a spec and its generated script into ``folder``; return the script's namespace."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(CONFIG))
    spec = {
        "version": 1,
        "model": {"hf_config": "./config.json", "dropout": 0.0},
        "freeze": freeze,
        "optimizer": {"name": "adamw", "lr": 1.0e-3},
        "scheduler": {"name": "cosine", "warmup_steps": 2},
        "batch": {"micro_batch_size": 8, "grad_accum_steps": 2, "seq_len": 64},
        "train": {"max_steps": 1000, "grad_clip": 1.0, "seed": 3, "log_every": 10},
        "checkpoint": {"dir": "checkpoints", "every_steps": None},
    }
    spec_path = folder / "freezegen.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    script = folder / "train.py"
    script.write_text(render_script(load_spec(spec_path), spec_path, folder))
    return runpy.run_path(str(script), run_name="benchmarked")


class Clock:
    """CPU and wall seconds since it was made."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def per_step(self, n: int) -> tuple[float, float]:
        """(CPU, wall) seconds per step over ``n`` steps."""
        return (time.process_time() - self.cpu) / n, (time.perf_counter() - self.wall) / n


class Setup:
    """A script's model, optimizer and a fixed list of windows, built as its main() does."""

    def __init__(self, ns: dict[str, Any], windows: int) -> None:
        ns["seed_everything"](ns["SEED"])
        self.ns = ns
        self.model = ns["build_model"]()
        frozen = ns["frozen_parameters"](self.model)
        for name, p in self.model.named_parameters():
            if name in frozen:
                p.requires_grad_(False)
        ns["set_train_mode"](self.model)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.data = ns["DataStream"](ns["build_dataset"](self.model))
        self.windows = [self.data.next_window() for _ in range(windows)]
        self.reset()

    def reset(self) -> None:
        self.optimizer = torch.optim.AdamW(self.trainable, **self.ns["OPTIMIZER_KWARGS"])
        self.thawing = self.ns["Thawing"](self.model, self.optimizer)
        self.step = 0

    def generated_steps(self, n: int) -> tuple[float, float]:
        """Seconds per step of the generated main loop's body."""
        device = torch.device("cpu")
        train_step = self.ns["train_step"]
        clock = Clock()
        for _ in range(n):
            self.thawing.thaw(self.step)
            window = self.windows[self.step % len(self.windows)]
            train_step(self.model, self.optimizer, window, self.step, device)
            self.step += 1
        return clock.per_step(n)


def hand_written_steps(model, optimizer, windows, n: int, first: int) -> tuple[float, float]:
    """The minimal loop a person would write for the same work; seconds per step."""
    params = [p for p in model.parameters() if p.requires_grad]
    clock = Clock()
    for step in range(first, first + n):
        window = windows[step % len(windows)]
        for batch in window:
            logits = model(input_ids=batch["input_ids"], use_cache=False).logits
            loss = F.cross_entropy(
                logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten()
            )
            (loss / len(window)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
    return clock.per_step(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds per loop")
    parser.add_argument("--steps", type=int, default=4, help="steps per round")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args()
    torch.set_num_threads(1)
    half = LAYERS // 2
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        none = Setup(generated_script(base / "none", {}), windows=4)
        bottom = Setup(
            generated_script(base / "bottom", {"embeddings": True, "layers": {"first": half}}),
            windows=4,
        )
        blocks_only = Setup(
            generated_script(base / "blocks", {"layers": {"first": half}}), windows=4
        )

    # (a) the same model, weights and batches, in a hand-written loop
    hand_model = copy.deepcopy(none.model)
    hand_optimizer = torch.optim.AdamW(
        [p for p in hand_model.parameters() if p.requires_grad], **none.ns["OPTIMIZER_KWARGS"]
    )
    for setup in (none, bottom, blocks_only):  # warm-up: allocator, optimizer state
        setup.generated_steps(2)
    hand_written_steps(hand_model, hand_optimizer, none.windows, 2, 0)

    times: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("gen", "hand", "bottom", "blocks")
    }
    for r in range(args.rounds):
        order = ["gen", "hand", "bottom", "blocks"]
        if r % 2:
            order.reverse()
        for name in order:
            if name == "gen":
                times[name].append(none.generated_steps(args.steps))
            elif name == "hand":
                first = 2 + r * args.steps
                times[name].append(
                    hand_written_steps(hand_model, hand_optimizer, none.windows, args.steps, first)
                )
            elif name == "bottom":
                times[name].append(bottom.generated_steps(args.steps))
            else:
                times[name].append(blocks_only.generated_steps(args.steps))
    median = {k: statistics.median(cpu for cpu, _ in v) for k, v in times.items()}
    wall = {k: statistics.median(w for _, w in v) for k, v in times.items()}

    print(
        f"train_overhead: {platform.python_implementation()} {platform.python_version()}, "
        f"torch {torch.__version__}, 1 CPU thread; llama {LAYERS} blocks x hidden "
        f"{CONFIG['hidden_size']}, micro-batch 8 x accumulation 2 x seq 64; "
        f"{args.rounds} rounds x {args.steps} steps, medians of CPU time per step"
    )
    ratio = median["hand"] / median["gen"]
    verdict = "PASS" if ratio >= OVERHEAD_GOAL else "MISS"
    print(
        f"(a) generated {1 / median['gen']:.2f} steps/s ({median['gen'] * 1e3:.1f} ms), "
        f"hand-written {1 / median['hand']:.2f} steps/s ({median['hand'] * 1e3:.1f} ms): "
        f"ratio {ratio:.3f} (goal >= {OVERHEAD_GOAL}) {verdict}; wall-clock ratio "
        f"{wall['hand'] / wall['gen']:.3f}"
    )
    saving = 1 - median["bottom"] / median["gen"]
    blocks_saving = 1 - median["blocks"] / median["gen"]
    print(
        f"(b) step time, nothing frozen {median['gen'] * 1e3:.1f} ms; embeddings + bottom "
        f"{half}/{LAYERS} blocks frozen {median['bottom'] * 1e3:.1f} ms (saving {saving:.1%}); "
        f"bottom {half}/{LAYERS} blocks frozen, embeddings trainable "
        f"{median['blocks'] * 1e3:.1f} ms (saving {blocks_saving:.1%}); wall-clock savings "
        f"{1 - wall['bottom'] / wall['gen']:.1%} and {1 - wall['blocks'] / wall['gen']:.1%}"
    )
    return 1 if args.strict and verdict == "MISS" else 0


if __name__ == "__main__":
    sys.exit(main())
