"""Scripts that store the frozen blocks' linears quantized without an adapter: int8 or NF4
(bitsandbytes), int8 weight-only (torchao); the blocks the freeze section leaves trainable train
fully, in the spec's precision.

A tiny llama trains on CPU: the loss falls, the quantized weights end bit-identical, a checkpoint
holds the trained parameters alone (its size follows their count), the final model is the
dequantized fp32 model that from_pretrained loads without a quantization library, and a run
killed with SIGKILL and resumed ends bit-identical. A frozen block above a trained one passes
its gradients down through its quantized linears.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import (
    REPO,
    final_weights,
    generate,
    initial_state,
    run_and_kill,
    run_script,
    run_scripts,
    script_namespace,
    tiny_spec,
)

pytest.importorskip("bitsandbytes")

# Each test runs generated scripts (in-process or in subprocesses): seconds each.
pytestmark = pytest.mark.slow

QUANTIZATIONS = {
    "int8": {"weights": "int8"},
    "nf4": {"weights": "nf4", "double_quant": True, "compute": "bf16"},
    "torchao-int8": {"weights": "int8", "library": "torchao"},
}
# The tiny llama has two blocks: below the trained one, or above it (its gradients then flow
# down through the quantized linears).
FIRST = {"layers": {"first": 1}}
LAST = {"layers": "1"}


def _spec(folder: Path, weights: str, freeze: dict[str, Any], **sections: Any) -> Path:
    defaults: dict[str, Any] = {
        "freeze": freeze,
        "quantization": QUANTIZATIONS[weights],
        "precision": "bf16",
        "train": {"max_steps": 12, "grad_clip": 1.0, "seed": 3, "log_every": 1},
    }
    return tiny_spec(folder, "llama", **{**defaults, **sections})


def _plain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with each tensor subclass (torchao's Int8Tensor, which torch.equal cannot
    compare) given as its inner tensors ("<name>:qdata", "<name>:scale", ...), cloned."""
    plain = {}
    for name, tensor in state.items():
        tensor = tensor.detach()
        if type(tensor) is torch.Tensor:
            plain[name] = tensor.clone()
            continue
        inner, _ = tensor.__tensor_flatten__()
        plain.update({f"{name}:{key}": getattr(tensor, key).clone() for key in inner})
    return plain


def _train_in_process(script: Path) -> tuple[dict[str, Any], list[float]]:
    """Run the script's main() here, keeping what the model save_final receives held then (it
    dequantizes the model); return those facts and the logged losses."""
    ns = script_namespace(script)
    scope = ns["main"].__globals__
    save_final, seen = scope["save_final"], {}
    losses: list[float] = []

    def keep(model: torch.nn.Module) -> None:
        batch = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            seen["logits"] = model(input_ids=batch, use_cache=False).logits.float()
        seen.update(batch=batch, state=_plain(model.state_dict()))
        seen["trained"] = {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        }
        save_final(model)

    def log(text: str) -> None:
        if "| loss " in text:
            losses.append(float(text.split("| loss ")[1].split(" ")[0]))

    scope.update(save_final=keep, log=log)
    sys.path.insert(0, str(script.parent))
    try:
        scope["main"]()
    finally:
        sys.path.remove(str(script.parent))
    return seen, losses


@pytest.mark.parametrize(
    ("weights", "freeze"),
    [("int8", FIRST), ("nf4", FIRST), ("int8", LAST), ("torchao-int8", LAST)],
    ids=["int8-first", "nf4-first", "int8-above", "torchao-int8-above"],
)
def test_frozen_quantized_blocks_stay_while_the_rest_trains_and_checkpoints_hold_what_trains(
    tmp_path: Path, weights: str, freeze: dict[str, Any]
) -> None:
    script = generate(_spec(tmp_path, weights, freeze))
    text = script.read_text()
    assert "import peft" not in text and "prepare_model_for_kbit_training" not in text
    before = _plain(initial_state(script)[0])
    seen, losses = _train_in_process(script)
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.5, losses

    # The frozen block is stored quantized and ends bit-identical; the trained one keeps fp32
    # weights, and they trained.
    frozen_block = "model.layers.0." if freeze is FIRST else "model.layers.1."
    trained_block = "model.layers.1." if freeze is FIRST else "model.layers.0."
    after = seen["state"]
    assert after.keys() == before.keys()
    quantized = {
        n
        for n, t in before.items()
        if n.startswith(frozen_block) and (":" in n or t.dtype in (torch.int8, torch.uint8))
    }
    assert quantized and all(torch.equal(after[n], before[n]) for n in quantized)
    frozen = {n for n in before if n.startswith(frozen_block)}
    assert all(torch.equal(after[n], before[n]) for n in frozen)
    trained = seen["trained"]
    assert {n for n in trained if n.startswith(trained_block)} == {
        n for n in before if n.startswith(trained_block)
    }
    assert not any(n.startswith(frozen_block) for n in trained)
    assert all(t.dtype == torch.float32 for t in trained.values())
    assert all(not torch.equal(trained[n], before[n]) for n in trained)

    # A checkpoint holds the trained parameters alone: fp32 weights and AdamW's two moments,
    # 12 bytes a parameter, plus the trainer state and a bounded record per tensor.
    newest = sorted((tmp_path / "checkpoints").glob("step-*.pt"))[-1]
    state = torch.load(newest, weights_only=True)
    assert state["model"].keys() == trained.keys()
    n = sum(t.numel() for t in trained.values())
    assert 12 * n <= newest.stat().st_size <= 12 * n + 3 * 512 * len(trained) + 32 * 1024

    # The final model: fp32, no quantization config, the trained weights as they ended, and
    # the logits of the quantized model within its compute precision.
    import transformers

    final = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoints" / "final")
    assert not hasattr(final.config, "quantization_config")
    assert all(p.dtype == torch.float32 for p in final.parameters())
    weights_now = dict(final.named_parameters())
    assert all(torch.equal(weights_now[name], t) for name, t in trained.items())
    with torch.no_grad():
        logits = final(input_ids=seen["batch"], use_cache=False).logits
    scale = seen["logits"].abs().max().item()
    torch.testing.assert_close(logits, seen["logits"], rtol=1.6e-2, atol=1.6e-2 * scale)


@pytest.mark.parametrize(
    ("weights", "freeze"),
    [("int8", LAST), ("torchao-int8", FIRST)],
    ids=["int8-above", "torchao-int8-first"],
)
def test_killed_at_random_moments_resumes_bit_identical(
    tmp_path: Path, weights: str, freeze: dict[str, Any]
) -> None:
    def spec(folder: Path) -> Path:
        return _spec(
            folder,
            weights,
            freeze,
            # fp16: the scaler's state is resumed too.
            precision="fp16",
            train={"max_steps": 12, "grad_clip": 1.0, "seed": 11, "log_every": 1},
            checkpoint={"dir": "checkpoints", "every_steps": 1, "keep_last": 2},
        )

    reference, killed = generate(spec(tmp_path / "reference")), generate(spec(tmp_path / "k"))
    rng = random.Random(20261202)
    kills = sum(
        run_and_kill(killed, rng.randint(2, 5), rng.uniform(0.0, 0.01)) is None for _ in range(2)
    )
    assert kills >= 1
    ref_run, resumed = run_scripts([reference, killed])
    ref_run.check()
    assert "resumed from step" in resumed.check().stdout
    expected, got = final_weights(reference), final_weights(killed)
    assert expected.keys() == got.keys()
    assert all(torch.equal(got[name], expected[name]) for name in expected)


def test_a_weight_freeze_leaves_trainable_but_stored_quantized_stops_the_run(
    tmp_path: Path,
) -> None:
    # What an architecture no family knows meets: transformers' default skip list (the head),
    # which quantizes the linears of the trained block too.
    script = generate(_spec(tmp_path, "nf4", FIRST, train={"max_steps": 2, "seed": 3}))
    ns = script_namespace(script)
    scope = ns["main"].__globals__
    assert "llm_int8_skip_modules" in scope["QUANTIZATION"]
    scope["QUANTIZATION"] = {
        k: v for k, v in scope["QUANTIZATION"].items() if k != "llm_int8_skip_modules"
    }
    sys.path.insert(0, str(script.parent))
    try:
        with pytest.raises(SystemExit, match="weights that FREEZE leaves trainable are stored"):
            scope["main"]()
    finally:
        sys.path.remove(str(script.parent))


def test_a_gpt2_final_model_gets_its_conv1d_layers_back(tmp_path: Path) -> None:
    # bitsandbytes stores GPT-2's Conv1D weights transposed, as linears, and dequantize()
    # returns nn.Linear: saved as such, GPT-2 could not load them (its square attention
    # projection would even load transposed, silently).
    import transformers
    from transformers.pytorch_utils import Conv1D

    spec = tiny_spec(
        tmp_path,
        "gpt2",
        freeze={"layers": {"first": 1}},
        quantization=QUANTIZATIONS["int8"],
        precision="bf16",
        train={"max_steps": 4, "seed": 3, "log_every": 1},
    )
    # No dropout: the trained model's logits are taken in training mode (bitsandbytes' CPU
    # inference path repacks 4-bit weights and fails on dimensions this small), and
    # from_pretrained returns the final model in eval mode.
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    (tmp_path / "config.json").write_text(json.dumps(config))
    seen, losses = _train_in_process(generate(spec))
    assert len(losses) == 4
    final = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "checkpoints" / "final")
    assert isinstance(final.transformer.h[0].attn.c_proj, Conv1D)
    assert not hasattr(final.config, "quantization_config")
    with torch.no_grad():
        logits = final(input_ids=seen["batch"], use_cache=False).logits
    scale = seen["logits"].abs().max().item()
    torch.testing.assert_close(logits, seen["logits"], rtol=1.6e-2, atol=1.6e-2 * scale)


def test_the_int8_frozen_example_trains(tmp_path: Path) -> None:
    example = REPO / "examples" / "int8-frozen"
    shutil.copytree(example, tmp_path / "example")
    script = generate(tmp_path / "example" / "freezegen.yaml")
    run = run_script(script).check()
    assert run.losses[-1] < run.losses[0]


def _ddp_spec(folder: Path, weights: str, strategy: str, micro_batch: int) -> Path:
    """A spec whose run two DDP ranks (micro_batch 4) and one process (8) train alike: the
    counting data, SGD, fp32, the frozen quantized block above the trained one."""
    from tests.generate.test_distributed import COUNTING

    path = _spec(
        folder,
        weights,
        LAST,
        optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.9},
        precision="fp32",
        batch={"micro_batch_size": micro_batch, "grad_accum_steps": 2, "seq_len": 16},
        data={"source": "factory", "factory": "counting:dataset"},
        train={"max_steps": 6, "grad_clip": 1.0, "seed": 5, "log_every": 1},
        distributed={"strategy": strategy},
    )
    (folder / "counting.py").write_text(COUNTING)
    return path


@pytest.mark.parametrize("weights", ["nf4", "torchao-int8"])
def test_ddp_over_a_quantized_base_on_two_processes_matches_one_process(
    tmp_path: Path, weights: str
) -> None:
    from tests.generate.test_distributed import torchrun

    single = generate(_ddp_spec(tmp_path / "single", weights, "none", 8))
    ddp = generate(_ddp_spec(tmp_path / "ddp", weights, "ddp", 4))
    reference = run_script(single).check()
    run = torchrun(ddp, timeout=180).check()
    assert run.stdout.count("step 6/6 |") == 1, "only rank 0 logs"
    assert run.losses == pytest.approx(reference.losses, rel=1e-4)
    # The sums of two half batches differ from the whole batch's in the last bits; trained
    # weights (the embeddings too) of magnitude 0.1 to 1 end within 2e-5 of each other.
    expected, got = final_weights(single), final_weights(ddp)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=5e-5)
