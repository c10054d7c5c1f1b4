"""What trains under a whole spec (freezegen/arch/training.py): the freeze section alone without
an adapter; with one, the adapters and adapter.train; quantized storage for the block linears
frozen at step 0, which is exactly what bitsandbytes converts when the script passes
unquantized_linears as llm_int8_skip_modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.arch import from_hf_config
from freezegen.arch.families import all_families
from freezegen.arch.family import CAUSAL_LM, SEQUENCE_CLASSIFICATION, Family
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import parameter_table
from freezegen.arch.training import plan_training, unquantized_linears
from freezegen.spec import load_spec
from tests.generate.conftest import tiny_spec


def _plan(tmp_path: Path, family: str = "llama", **sections):
    spec = load_spec(tiny_spec(tmp_path, family, **sections))
    arch = from_hf_config(spec.model.hf_config)
    params = parameter_table(arch, spec.model.head)
    return spec, arch, params, plan_training(spec, arch, params)


def test_without_an_adapter_the_freeze_section_decides(tmp_path: Path) -> None:
    freeze = {"embeddings": True, "layers": {"first": 1}, "patterns": ["*.nope"]}
    spec, arch, params, plan = _plan(tmp_path, freeze=freeze)
    alone = plan_freeze(spec.freeze, params, arch.num_layers)
    assert (plan.frozen, plan.frozen_blocks, plan.misses) == (
        alone.frozen,
        alone.frozen_blocks,
        alone.misses,
    )
    assert plan.trainable == alone.trainable and plan.adapter is None and not plan.quantized


def test_with_an_adapter_the_base_trains_only_what_adapter_train_names(tmp_path: Path) -> None:
    adapter = {"r": 2, "targets": ["q_proj"], "layers": {"last": 1}, "train": ["lm_head.*"]}
    _, _, params, plan = _plan(tmp_path, adapter=adapter, freeze={"layers": {"first": 1}})
    assert plan.adapter is not None
    assert plan.frozen == {p.name for p in params} - {"lm_head.weight"}
    assert [p.name for p in plan.trainable] == [
        "lm_head.weight",
        "base_model.model.model.layers.1.self_attn.q_proj.lora_A.default.weight",
        "base_model.model.model.layers.1.self_attn.q_proj.lora_B.default.weight",
    ]
    # block 0 holds nothing that trains; block 1 holds an adapter, so gradients start there
    assert plan.frozen_blocks == {0}
    assert plan.first_trainable_block == 1


def test_quantized_weights_are_the_block_linears_frozen_at_step_0(tmp_path: Path) -> None:
    _, arch, params, plan = _plan(
        tmp_path,
        freeze={"layers": {"first": 1}},
        quantization={"weights": "nf4"},
    )
    assert plan.quantized == {
        p.name for p in params if p.block == 0 and len(p.shape) == 2 and p.name.endswith("weight")
    }
    assert "lm_head" in unquantized_linears(plan, arch, "causal-lm")
    adapter = {"targets": ["mlp"], "train": ["*.layers.1.mlp.down_proj.*"]}
    _, _, params, plan = _plan(tmp_path / "a", adapter=adapter, quantization={"weights": "int8"})
    linear_weights = {p.name for p in params if p.block is not None and len(p.shape) == 2}
    assert plan.quantized == linear_weights - {"model.layers.1.mlp.down_proj.weight"}
    _, _, _, plan = _plan(tmp_path / "b", adapter=adapter, quantization={"weights": "none"})
    assert not plan.quantized


@pytest.mark.parametrize(
    ("weights", "head"),
    [("nf4", CAUSAL_LM), ("int8", CAUSAL_LM), ("nf4", SEQUENCE_CLASSIFICATION)],
)
@pytest.mark.parametrize("family", all_families(), ids=lambda f: f.name)
def test_bitsandbytes_converts_exactly_the_quantized_linears(
    family: Family, weights: str, head: str, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig
    from transformers.integrations.bitsandbytes import replace_with_bnb_linear

    from freezegen.memory.traced import build_model

    if head not in family.heads:
        pytest.skip(f"transformers has no {head} class for {family.name}")
    adapter = {"targets": ["attention"], "train": ["*.1.*"]}
    model = {"hf_config": "./config.json", "head": head}
    spec, arch, _, plan = _plan(
        tmp_path, family.name, model=model, adapter=adapter, quantization={"weights": weights}
    )
    assert plan.quantized
    skip = unquantized_linears(plan, arch, head)
    config = BitsAndBytesConfig(
        load_in_4bit=weights == "nf4", load_in_8bit=weights == "int8", llm_int8_skip_modules=skip
    )
    with torch.device("meta"):
        model, _ = build_model(spec)
        model = replace_with_bnb_linear(model, skip, quantization_config=config)
    converted = {
        f"{name}.weight"
        for name, m in model.named_modules()
        if type(m).__name__ in ("Linear4bit", "Linear8bitLt")
    }
    assert converted == plan.quantized
