"""Which library versions do generated scripts run with? The evidence for the floors they check.

freezegen/generate/requirements.py gives every generated script the oldest transformers, peft,
bitsandbytes and torchao it needs, and pyproject's extras declare the same floors. This runs
three generated scripts (a tiny llama, LoRA on attention and MLP, merged at the end, 6 CPU steps:
over a full-precision base, an NF4 base through bitsandbytes, an int8 base through torchao) in a
throwaway virtual environment, once per combination of versions in COMBINATIONS, and prints
whether each finished with its final adapter and merged weights, or the error that stopped it.

It installs from the package index (torch from the constraint beside it, as the README's
install does), so it is slow: minutes per row. Run:

    python benchmarks/library_floors.py [--venv DIR] [--only SCRIPT]

RESULTS.md ("Library floors") keeps the latest table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 128,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
SPEC = """version: 1
model: {{hf_config: ./config.json, head: causal-lm}}
adapter: {{kind: lora, r: 4, alpha: 8, dropout: 0.0, targets: [attention, mlp], merge: true}}
{quantization}precision: fp32
optimizer: {{name: adamw, lr: 1.0e-2, weight_decay: 0.0}}
batch: {{micro_batch_size: 2, grad_accum_steps: 1, seq_len: 16}}
train: {{max_steps: 6, seed: 1, log_every: 2}}
data: {{source: synthetic}}
checkpoint: {{dir: checkpoints, every_steps: 3, keep_last: 1, resume: auto}}
"""
SCRIPTS = {
    "lora": "",
    "nf4": "quantization: {weights: nf4, compute: bf16}\n",
    "torchao": "quantization: {weights: int8, library: torchao}\n",
}
# (script, pins): each row installs these over the previous row's environment.
COMBINATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *(
        ("torchao", ("transformers==5.24.0", "torchao==0.18.0", f"peft=={v}"))
        for v in ("0.14.0", "0.15.2", "0.16.0", "0.17.1", "0.18.1", "0.19.1", "0.21.2")
    ),
    *(
        ("torchao", ("transformers==5.24.0", "peft==0.21.2", f"torchao=={v}"))
        for v in ("0.12.0", "0.13.0", "0.14.1", "0.15.0", "0.16.0", "0.17.0")
    ),
    *(
        ("torchao", ("peft==0.21.2", "torchao==0.18.0", f"transformers=={v}"))
        for v in ("4.50.3", "4.53.3", "4.57.0", "4.57.6")
    ),
    ("torchao", ("transformers==4.57.6", "peft==0.18.1", "torchao==0.13.0")),
    ("torchao", ("transformers==4.57.0", "peft==0.19.1", "torchao==0.16.0")),
    ("torchao", ("transformers==5.24.0", "peft==0.19.1", "torchao==0.16.0")),
    ("nf4", ("transformers==4.56.0", "peft==0.13.2", "bitsandbytes==0.50.2")),
    ("nf4", ("transformers==4.57.6", "peft==0.13.2", "bitsandbytes==0.50.2")),
    ("lora", ("transformers==4.40.2", "peft==0.13.2")),
    ("lora", ("transformers==5.24.0", "peft==0.13.2")),
    ("lora", ("transformers==5.24.0", "peft==0.16.0")),
)


def _write_scripts(folder: Path) -> dict[str, Path]:
    """Generate each script of SCRIPTS into ``folder``/<name>/train.py; return their paths."""
    scripts = {}
    for name, quantization in SCRIPTS.items():
        home = folder / name
        home.mkdir()
        (home / "config.json").write_text(json.dumps(CONFIG))
        spec = home / "freezegen.yaml"
        spec.write_text(SPEC.format(quantization=quantization))
        script = home / "train.py"
        cmd = [sys.executable, "-m", "freezegen", "generate", str(spec), "-o", str(script)]
        subprocess.run(cmd, check=True, capture_output=True)
        scripts[name] = script
    return scripts


def _last_error(text: str) -> str:
    """What stopped a run: the script's own requirements message (the libraries it names), or
    the last line naming an exception."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    header = "this script needs newer or missing libraries:"
    if header in lines:
        return "script's check: " + "; ".join(lines[lines.index(header) + 1 :])[:200]
    for line in reversed(lines):
        if "Error" in line:
            return line[:160]
    return lines[-1][:160] if lines else "(no output)"


def run_row(venv: Path, script: Path, pins: tuple[str, ...]) -> str:
    """Install ``pins`` into ``venv`` and run ``script`` fresh; return "OK" or what failed."""
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    install = subprocess.run(
        [*pip, "-c", str(REPO / "constraints.txt"), *pins], capture_output=True, text=True
    )
    if install.returncode != 0:
        return "install failed: " + _last_error(install.stderr)
    checkpoints = script.parent / "checkpoints"
    subprocess.run(["rm", "-rf", str(checkpoints)], check=True)
    # The script's own environment check runs too: a combination below a floor it declares
    # stops with its message, which is the row's answer.
    ran = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        capture_output=True,
        text=True,
        cwd=script.parent,
        timeout=900,
    )
    final = checkpoints / "final"
    if ran.returncode == 0 and (final / "adapter").is_dir() and (final / "merged").is_dir():
        return "OK"
    return "FAIL: " + _last_error(ran.stderr + ran.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="reuse this virtual environment")
    parser.add_argument("--only", choices=sorted(SCRIPTS), help="run this script's rows only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        venv = args.venv or folder / "venv"
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            base = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            subprocess.run([*base, "-c", str(REPO / "constraints.txt"), "torch"], check=True)
        scripts = _write_scripts(folder)
        print(f"{'script':8s} {'pins':62s} outcome")
        for name, pins in COMBINATIONS:
            if args.only and name != args.only:
                continue
            outcome = run_row(venv, scripts[name], pins)
            print(f"{name:8s} {' '.join(pins):62s} {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
