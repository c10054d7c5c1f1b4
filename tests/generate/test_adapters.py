"""Scripts that train LoRA adapters (peft), over a full-precision, NF4 or INT8 (bitsandbytes) base,
or an INT8 weight-only base (torchao).

A tiny llama trains on CPU: the loss falls, the frozen base ends bit-identical, a checkpoint
holds the trained parameters alone (its size follows the adapter's parameter count), the final
adapter is in peft's format and the merged weights give the logits of base + adapter. A run
killed with SIGKILL and resumed ends bit-identical; two DDP ranks train as one process.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import (
    TINY_CONFIGS,
    generate,
    initial_state,
    run_and_kill,
    run_script,
    run_scripts,
    script_namespace,
    tiny_spec,
)

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")

# Each test runs generated scripts (in-process or in subprocesses): seconds each.
pytestmark = pytest.mark.slow

QUANTIZATIONS = {
    "none": None,
    "nf4": {"weights": "nf4", "double_quant": True, "compute": "bf16"},
    "fp4": {"weights": "fp4", "double_quant": False, "compute": "fp32"},
    "int8": {"weights": "int8"},
    "torchao-int8": {"weights": "int8", "library": "torchao"},
}
R = 4
TARGETS = ["q_proj", "v_proj", "mlp"]


def _spec(folder: Path, weights: str, **sections: Any) -> Path:
    quantization = QUANTIZATIONS[weights]
    defaults: dict[str, Any] = {
        "adapter": {
            "r": R,
            "alpha": 2 * R,
            "dropout": 0.0,
            "targets": TARGETS,
            "train": ["*norm.weight"],
            "merge": True,
        },
        "precision": "bf16",
        "train": {"max_steps": 12, "grad_clip": 1.0, "seed": 3, "log_every": 1},
    }
    if quantization is not None:
        defaults["quantization"] = quantization
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


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The base model's state under a peft model, by the names it has without peft."""
    prefix = model.base_model.prefix
    return _plain(
        {
            name.replace(".base_layer.", "."): tensor
            for name, tensor in model.get_base_model().state_dict().items()
            if prefix not in name
        }
    )


def _train_in_process(script: Path) -> tuple[dict[str, Any], list[float]]:
    """Run the script's main() here, keeping the peft model save_final receives (and what it
    held then: merging changes it); return those facts and the logged losses."""
    ns = script_namespace(script)
    scope = ns["main"].__globals__
    save_final, seen = scope["save_final"], {}
    losses: list[float] = []

    def keep(model: torch.nn.Module) -> None:
        batch = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():  # train mode, dropout 0: bitsandbytes stays on its training path
            seen["logits"] = model(input_ids=batch, use_cache=False).logits.float()
        seen.update(batch=batch, base=_base_state(model), adapter=_adapter_parameters(model))
        seen["trained"] = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
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


def _adapter_parameters(model: torch.nn.Module) -> int:
    """r * (in + out) for every linear peft adapted, counted from the modules themselves."""
    from peft.tuners.lora import LoraLayer

    return sum(
        R * (m.in_features + m.out_features) for m in model.modules() if isinstance(m, LoraLayer)
    )


@pytest.mark.parametrize("weights", sorted(QUANTIZATIONS))
def test_lora_trains_keeps_the_base_and_saves_adapter_checkpoints_and_merged_weights(
    tmp_path: Path, weights: str
) -> None:
    script = generate(_spec(tmp_path, weights))
    before = _plain(initial_state(script)[0])
    seen, losses = _train_in_process(script)
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.05, losses

    # The frozen base is bit-identical (quantized storage and its constants included); what
    # adapter.train names has trained.
    after = seen["base"]
    assert after.keys() == before.keys()
    norms = {n for n in before if n.endswith("norm.weight")}
    assert norms and all(not torch.equal(after[n], before[n]) for n in norms)
    assert all(torch.equal(after[n], before[n]) for n in before.keys() - norms)
    if weights != "none":
        assert any(t.dtype in (torch.uint8, torch.int8) for t in before.values())

    # A checkpoint holds the trained parameters alone: the adapters and the norms.
    checkpoints = tmp_path / "checkpoints"
    newest = sorted(checkpoints.glob("step-*.pt"))[-1]
    state = torch.load(newest, weights_only=True)
    trained = seen["trained"]
    assert state["model"].keys() == trained.keys()
    adapter = seen["adapter"]
    n = sum(trained.values())
    assert n == adapter + sum(before[name].numel() for name in norms)
    # fp32 weights and AdamW's two moments: 12 bytes a parameter, plus the trainer state and
    # a bounded record per tensor (names, zip headers, 64-byte alignment).
    assert adapter > 0
    assert 12 * n <= newest.stat().st_size <= 12 * n + 3 * 512 * len(trained) + 32 * 1024

    # The final adapter in peft's format; the trained norms beside it; merged full weights.
    final = checkpoints / "final"
    assert {p.name for p in (final / "adapter").iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    from safetensors.torch import load_file

    saved = load_file(final / "adapter" / "adapter_model.safetensors")
    assert sum(t.numel() for t in saved.values()) == adapter
    assert load_file(final / "base.safetensors").keys() == norms
    import transformers

    merged = transformers.AutoModelForCausalLM.from_pretrained(final / "merged")
    assert not hasattr(merged.config, "quantization_config")
    assert all(p.dtype == torch.float32 for p in merged.parameters())
    with torch.no_grad():
        logits = merged(input_ids=seen["batch"], use_cache=False).logits
    # A quantized base computes in bf16 (quantization.compute); a full one in fp32.
    tolerance = 1.6e-2 if weights != "none" else 1e-5
    scale = seen["logits"].abs().max().item()
    torch.testing.assert_close(logits, seen["logits"], rtol=tolerance, atol=tolerance * scale)


def _final_adapter(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    final = folder / "checkpoints" / "final"
    return {
        **load_file(final / "adapter" / "adapter_model.safetensors"),
        **load_file(final / "base.safetensors"),
    }


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("weights", ["nf4", "torchao-int8"])
def test_qlora_killed_at_random_moments_resumes_bit_identical(tmp_path: Path, weights: str) -> None:
    def spec(folder: Path) -> Path:
        return _spec(
            folder,
            weights,
            # Adapter dropout: the RNG state matters; fp16: the scaler's state too.
            adapter={
                "r": R,
                "alpha": 8,
                "dropout": 0.1,
                "targets": "all-linear",
                "train": ["*norm.weight"],
            },
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
    assert _same(_final_adapter(reference.parent), _final_adapter(killed.parent))


def _ddp_spec(folder: Path, weights: str, strategy: str, micro_batch: int, **sections: Any) -> Path:
    """A spec whose run two DDP ranks (micro_batch 4) and one process (8) train alike: the
    counting data, SGD, fp32 (a quantized base computes in fp32 too)."""
    from tests.generate.test_distributed import COUNTING

    defaults: dict[str, Any] = {
        "optimizer": {"name": "sgd", "lr": 0.5, "momentum": 0.9},
        "precision": "fp32",
        "batch": {"micro_batch_size": micro_batch, "grad_accum_steps": 2, "seq_len": 16},
        "data": {"source": "factory", "factory": "counting:dataset"},
        "train": {"max_steps": 6, "grad_clip": 1.0, "seed": 5, "log_every": 1},
        "distributed": {"strategy": strategy},
    }
    if weights == "nf4":
        defaults["quantization"] = {"weights": "nf4", "compute": "fp32"}
    elif weights == "none":  # a base block thawed after DDP wrapped the peft model
        defaults["freeze"] = {"schedule": [{"at_step": 3, "unfreeze": {"layers": "0"}}]}
    path = _spec(folder, weights, **{**defaults, **sections})
    (folder / "counting.py").write_text(COUNTING)
    return path


@pytest.mark.parametrize("weights", ["none", "nf4", "torchao-int8"])
def test_ddp_with_adapters_on_two_processes_matches_one_process(
    tmp_path: Path, weights: str
) -> None:
    from tests.generate.test_distributed import torchrun

    single = generate(_ddp_spec(tmp_path / "single", weights, "none", 8))
    ddp = generate(_ddp_spec(tmp_path / "ddp", weights, "ddp", 4))
    reference = run_script(single).check()
    run = torchrun(ddp, timeout=180).check()
    assert run.stdout.count("step 6/6 |") == 1, "only rank 0 logs"
    assert run.losses == pytest.approx(reference.losses, rel=1e-4)
    assert ("step 3: unfroze" in run.stdout) == (weights == "none")
    expected, got = _final_adapter(single.parent), _final_adapter(ddp.parent)
    assert got.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


# Run under torchrun beside train.py: trains, and each rank saves its base (each torchao tensor
# as its inner tensors) as save_final on rank 0 meets it, by the names it has without peft.
_KEEP_THE_BASE = """
import gc

import torch
import torch.distributed as dist

import train


def plain(name, tensor):
    if type(tensor) is torch.Tensor:
        return {name: tensor.detach().clone()}
    inner, _ = tensor.__tensor_flatten__()
    return {f"{name}:{key}": getattr(tensor, key).detach().clone() for key in inner}


def keep(model):
    prefix, base = model.base_model.prefix, {}
    for name, tensor in model.get_base_model().state_dict().items():
        if prefix not in name:
            base.update(plain(name.replace(".base_layer.", "."), tensor))
    torch.save(base, f"base-{train.RANK}.pt")


original = train.save_final
train.save_final = lambda model: (keep(model), original(model))
train.main()
gc.collect()
dist.destroy_process_group()
"""


def test_ddp_over_a_torchao_base_keeps_it_bit_identical_and_resumes_bit_identical(
    tmp_path: Path,
) -> None:
    # DDP leaves torchao's quantized weights out of its broadcast (Int8Tensor has no
    # aten.view): every rank starts from the same quantized base and ends with it unchanged.
    import shutil

    from tests.generate.test_distributed import torchrun

    checkpoint = {"dir": "checkpoints", "every_steps": 1, "keep_last": 2, "resume": "auto"}
    script = generate(_ddp_spec(tmp_path / "run", "torchao-int8", "ddp", 4, checkpoint=checkpoint))
    text = script.read_text()
    assert "DistributedDataParallel._set_params_and_buffers_to_ignore_for_model" in text
    (script.parent / "keep_the_base.py").write_text(_KEEP_THE_BASE)
    torchrun(script.parent / "keep_the_base.py", timeout=180).check()
    before = _plain(initial_state(script)[0])
    after = torch.load(script.parent / "base-0.pt", weights_only=True)
    norms = {n for n in before if n.endswith("norm.weight")}
    assert after.keys() == before.keys() and any(":qdata" in n for n in before)
    assert all(torch.equal(after[n], before[n]) for n in before.keys() - norms)

    # The newest adapter checkpoint gone, the run resumes from the one before and ends alike.
    first = _final_adapter(script.parent)
    resumed = tmp_path / "resumed"
    shutil.copytree(script.parent, resumed)
    for name in ("step-00000006.pt", "step-00000006.pt.sha256"):
        (resumed / "checkpoints" / name).unlink()
    shutil.rmtree(resumed / "checkpoints" / "final")
    run = torchrun(resumed / script.name, timeout=180).check()
    assert "resumed from step 5" in run.stdout
    assert _same(first, _final_adapter(resumed))


def test_ddp_stops_when_ranks_hold_different_torchao_bases(tmp_path: Path) -> None:
    from tests.generate.test_distributed import torchrun

    script = generate(_ddp_spec(tmp_path, "torchao-int8", "ddp", 4))
    # Rank 1 builds its base from another seed, as if it had loaded other files.
    build = "    model = build_model()\n"
    text = script.read_text().replace(build, "    torch.manual_seed(SEED + RANK)\n" + build)
    assert "torch.manual_seed(SEED + RANK)" in text
    script.write_text(text)
    run = torchrun(script, timeout=180)
    assert run.returncode != 0
    assert "the quantized base weights differ between ranks" in run.stderr + run.stdout


def test_int8_lora_over_a_weights_folder_loads_it_quantized_and_trains(tmp_path: Path) -> None:
    import transformers

    torch.manual_seed(123)  # not the spec's seed: the weights must come from the folder
    config = dict(TINY_CONFIGS["llama"])
    model_type = config.pop("model_type")
    saved = transformers.AutoModelForCausalLM.from_config(
        transformers.AutoConfig.for_model(model_type, **config)
    )
    saved.save_pretrained(tmp_path / "weights")
    script = generate(
        _spec(
            tmp_path,
            "int8",
            model={"hf_config": "./config.json", "weights": "./weights"},
            train={"max_steps": 4, "grad_clip": 1.0, "seed": 3, "log_every": 1},
        )
    )
    assert "return load_quantized(weights, config, local_files_only=True)" in script.read_text()
    start = initial_state(script)[0]
    name = "model.embed_tokens.weight"
    assert torch.equal(start[name], saved.state_dict()[name])
    assert start["model.layers.0.mlp.up_proj.weight"].dtype == torch.int8
    run = run_script(script).check()
    assert len(run.losses) == 4


def test_linears_adapter_train_names_stay_unquantized_and_train(tmp_path: Path) -> None:
    # The training plan's skip list (arch/training.py unquantized_linears) reaches bitsandbytes.
    script = generate(_spec(tmp_path, "nf4", adapter={"r": R, "train": ["*.up_proj.weight"]}))
    assert '"llm_int8_skip_modules": [' in script.read_text()
    _, model, ns = initial_state(script)
    weights = dict(model.named_parameters())
    assert weights["model.layers.0.mlp.up_proj.weight"].dtype == torch.float32
    assert weights["model.layers.0.mlp.down_proj.weight"].dtype == torch.uint8
    model, frozen = ns["attach_adapter"](model)
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("layers.0.mlp.up_proj.base_layer.weight") for n in trains)
    assert not trains & frozen


def test_the_script_stops_when_the_targets_name_no_linear(tmp_path: Path) -> None:
    script = generate(_spec(tmp_path, "nf4", adapter={"r": R, "targets": ["no_such_proj"]}))
    _, model, ns = initial_state(script)
    with pytest.raises(SystemExit, match=re.escape("['no_such_proj'] select no linear")):
        ns["attach_adapter"](model)


@pytest.mark.parametrize(
    ("weights", "skip"),
    [("nf4", "llm_int8_skip_modules"), ("torchao-int8", "modules_to_not_convert")],
)
def test_the_script_stops_when_adapter_train_names_a_quantized_weight(
    tmp_path: Path, weights: str, skip: str
) -> None:
    # What an architecture no family knows meets: transformers' default skip list (the head).
    # A bitsandbytes weight is an integer payload, a torchao one a floating tensor subclass.
    script = generate(_spec(tmp_path, weights, adapter={"r": R, "train": ["*.up_proj.weight"]}))
    ns = script_namespace(script)
    scope = ns["build_model"].__globals__
    assert skip in scope["QUANTIZATION"]
    scope["QUANTIZATION"] = {k: v for k, v in scope["QUANTIZATION"].items() if k != skip}
    scope["seed_everything"](scope["SEED"])
    sys.path.insert(0, str(script.parent))
    try:
        model = scope["build_model"]()
    finally:
        sys.path.remove(str(script.parent))
    with pytest.raises(SystemExit, match=re.escape("adapter.train names quantized weights")):
        scope["attach_adapter"](model)
