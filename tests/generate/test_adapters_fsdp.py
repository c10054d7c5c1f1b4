"""LoRA (peft) over a full-precision base under FSDP2: two CPU ranks over gloo, a tiny llama.

The adapters are parameters of their blocks' FSDP2 units, sharded like the frozen base beside
them. Two ranks (micro-batch 4) must train like one process (micro-batch 8); the base must end
bit-identical; the final adapter, gathered to rank 0, must be in peft's format (loadable by
``PeftModel.from_pretrained`` over the base) and equal the one-process run's; the merged
weights rank 0 builds must equal base + adapter; a job killed with SIGKILL must resume from
its sharded, adapter-only checkpoint and end bit-identical. Three torchrun jobs in all: one
trains (every assertion on the trained run is about it), one is killed, one resumes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import generate, initial_state, run_script
from tests.generate.test_adapters import TARGETS, R, _ddp_spec, _final_adapter, _same
from tests.generate.test_distributed import torchrun, torchrun_command, torchrun_env

pytest.importorskip("peft")

# Each test runs generated scripts under torchrun: seconds each.
pytestmark = pytest.mark.slow

CHECKPOINT = {"dir": "checkpoints", "every_steps": 1, "keep_last": 2, "resume": "auto"}

# Run under torchrun beside train.py: trains, and (every rank gathering, rank 0 writing) saves
# the base FSDP2 holds in shards when save_final meets it, by the names it has without peft.
_KEEP_THE_BASE = """
import gc

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

import train


def keep(model):
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    if train.RANK == 0:
        prefix = model.base_model.prefix
        base = {
            name.removeprefix("base_model.model.").replace(".base_layer.", "."): tensor
            for name, tensor in weights.items()
            if prefix not in name
        }
        torch.save(base, "base.pt")


original = train.save_final
train.save_final = lambda model: (keep(model), original(model))
train.main()
gc.collect()
dist.destroy_process_group()
"""


def _spec(folder: Path, strategy: str, micro_batch: int, merge: bool = True) -> Path:
    # SGD, fp32, no dropout, the counting data: two ranks and one process train alike; block 0
    # thaws after FSDP2 sharded the peft model; adapter.train names norms in every unit.
    adapter = {"r": R, "alpha": 2 * R, "targets": TARGETS, "train": ["*norm.weight"]}
    return _ddp_spec(
        folder,
        "none",
        strategy,
        micro_batch,
        checkpoint=CHECKPOINT,
        adapter={**adapter, "dropout": 0.0, "merge": merge},
    )


def _peft_model(script: Path) -> Any:
    """The script's initial model with what trained loaded over it, as a user loads it: the
    base parameters that trained (base.safetensors, by the names they have without peft), then
    the adapter through peft."""
    import peft
    from safetensors.torch import load_file

    _, base, _ = initial_state(script)
    final = script.parent / "checkpoints" / "final"
    _, unexpected = base.load_state_dict(load_file(final / "base.safetensors"), strict=False)
    assert not unexpected
    return peft.PeftModel.from_pretrained(base, final / "adapter")


def test_lora_under_fsdp2_trains_as_one_process_and_resumes_bit_identical(
    tmp_path: Path,
) -> None:
    single = generate(_spec(tmp_path / "single", "none", 8))
    script = generate(_spec(tmp_path / "fsdp", "fsdp", 4))
    assert "fully_shard(block)" in script.read_text()
    reference = run_script(single).check()
    (script.parent / "keep_the_base.py").write_text(_KEEP_THE_BASE)
    run = torchrun(script.parent / "keep_the_base.py", timeout=180).check()
    assert run.stdout.count("step 6/6 |") == 1, "only rank 0 logs"
    assert "step 3: unfroze" in run.stdout
    assert run.losses[-1] < run.losses[0], run.losses
    assert run.losses == pytest.approx(reference.losses, rel=1e-4)

    # The frozen base is bit-identical; the norms adapter.train names and block 0, thawed at
    # step 3, trained.
    before = initial_state(script)[0]
    after = torch.load(script.parent / "base.pt", weights_only=True)
    assert after.keys() == before.keys()
    trained = {n for n in before if n.endswith("norm.weight") or n.startswith("model.layers.0.")}
    assert all(not torch.equal(after[n], before[n]) for n in trained if n.endswith("weight"))
    assert all(torch.equal(after[n], before[n]) for n in before.keys() - trained)

    # The final adapter in peft's format, as one process saves it (fp32 tolerance); the base
    # parameters that trained beside it.
    expected, got = _final_adapter(single.parent), _final_adapter(script.parent)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)
    from safetensors.torch import load_file

    final = script.parent / "checkpoints" / "final"
    adapter = load_file(final / "adapter" / "adapter_model.safetensors")
    assert adapter and all(".lora_A." in n or ".lora_B." in n for n in adapter)
    assert load_file(final / "base.safetensors").keys() == {
        n for n in trained if n.endswith("weight")
    }

    # peft loads it over the base; the merged weights rank 0 wrote are base + adapter (the
    # thawed block and the norms come from base.safetensors, as a user would load them).
    model = _peft_model(script)
    loaded = {n: p for n, p in model.named_parameters() if ".lora_" in n}
    assert sum(p.numel() for p in loaded.values()) == sum(t.numel() for t in adapter.values())
    import transformers

    merged = transformers.AutoModelForCausalLM.from_pretrained(final / "merged")
    batch = torch.randint(1, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected_logits = model.eval()(input_ids=batch, use_cache=False).logits
        logits = merged.eval()(input_ids=batch, use_cache=False).logits
    torch.testing.assert_close(logits, expected_logits, rtol=1e-5, atol=1e-5)
    expected = load_file(single.parent / "checkpoints" / "final" / "merged" / "model.safetensors")
    for name, tensor in load_file(final / "merged" / "model.safetensors").items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-4, atol=1e-5, msg=name)

    # A checkpoint holds (in every rank's shards) what trains and its optimizer state alone:
    # no tensor of the frozen base.
    import torch.distributed.checkpoint as dcp

    saved = dcp.FileSystemReader(script.parent / "checkpoints" / "step-00000006").read_metadata()
    model_keys = {k for k in saved.state_dict_metadata if k.startswith("model.")}
    lora = {k for k in model_keys if ".lora_" in k}
    assert len(lora) == len(adapter)
    assert {
        k.removeprefix("model.base_model.model.").replace(".base_layer.", ".")
        for k in model_keys - lora
    } == trained

    # Killed (SIGKILL, every process of the job) after its fourth step, then started again: the
    # run resumes from its sharded, adapter-only checkpoint and ends bit-identical. Without a
    # merge, only what trains is gathered for the final adapter: the same adapter.
    killed = generate(_spec(tmp_path / "killed", "fsdp", 4, merge=False))
    assert _kill_after(killed, "step 4/6 |")
    run = torchrun(killed, timeout=180).check()
    assert "resumed from step " in run.stdout
    assert _same(got, _final_adapter(killed.parent))
    assert not (killed.parent / "checkpoints" / "final" / "merged").exists()


def _kill_after(script: Path, line: str) -> bool:
    """Start ``script`` under torchrun and SIGKILL the whole job (torchrun and both ranks)
    once rank 0 logs ``line``; whether it was still running then."""
    proc = subprocess.Popen(
        torchrun_command(script),
        cwd=script.parent,
        env=torchrun_env(script),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for text in proc.stdout:
        if text.startswith(line):
            break
    running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return running
