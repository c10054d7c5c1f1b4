"""One adapter selection, one answer: the torch-free plan lint uses (freezegen/arch/adapters.py)
names the linears freezegen/runtime/adapters.py finds on the built model of every family, with
the same in/out features, and its adapter parameters are the ones peft's get_peft_model creates,
by name and shape."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from freezegen.arch import from_hf_config
from freezegen.arch.adapters import adapter_rules, plan_adapter
from freezegen.arch.families import all_families, family_of
from freezegen.arch.family import Family
from freezegen.arch.params import parameter_table
from freezegen.spec import load_spec
from freezegen.spec.models import AdapterSpec
from tests.generate.conftest import tiny_spec

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SELECTIONS: list[dict[str, Any]] = [
    {"targets": ["attention", "mlp"]},
    # names of several families: each family matches some, and both sides agree on which
    {"targets": ["q_proj", "c_attn", "query", "qkv_proj", "down_proj", "intermediate.dense"]},
    {"targets": "all-linear", "layers": {"last": 1}},
    {"targets": ["mlp.down_proj", "mlp.c_proj", "o_proj", "attention"], "layers": [0]},
    {"targets": ["mlp"], "layers": "1"},
    {"targets": ["nothing_named_so"]},
]


def _built(family: Family, tmp_path: Path, device: str):
    """The model the trace and the generated script build, with its architecture and table."""
    from freezegen.memory.traced import build_model

    spec = load_spec(tiny_spec(tmp_path, family.name))
    with torch.device(device):
        model, _ = build_model(spec)
    arch = from_hf_config(spec.model.hf_config)
    return model, arch, parameter_table(arch)


@pytest.mark.parametrize("family", all_families(), ids=lambda f: f.name)
def test_plan_names_the_linears_the_runtime_finds(family: Family, tmp_path: Path) -> None:
    from freezegen.runtime.adapters import adapter_targets, linear_features

    model, arch, params = _built(family, tmp_path, "meta")
    kinds = {kind: list(names) for kind, names in family.modules.items()}
    for selection in SELECTIONS:
        adapter = AdapterSpec.model_validate(selection)
        plan = plan_adapter(adapter, family, params, arch.num_layers)
        found = adapter_targets(model, adapter_rules(adapter, arch.num_layers), kinds)
        assert plan.target_modules == found, selection
        # the depth known only once the model is built ({last: N} waits for it) gives the same
        assert adapter_targets(model, adapter_rules(adapter, None), kinds) == found, selection
        features = {lin.name: (lin.in_features, lin.out_features) for lin in plan.linears}
        assert features == {n: linear_features(model.get_submodule(n)) for n in found}
    assert plan_adapter(
        AdapterSpec.model_validate(SELECTIONS[0]), family, params, arch.num_layers
    ).linears


@pytest.mark.parametrize("family", all_families(), ids=lambda f: f.name)
def test_adapter_parameters_are_the_ones_peft_creates(family: Family, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    model, arch, params = _built(family, tmp_path, "cpu")
    adapter = AdapterSpec.model_validate({"r": 4, "targets": "all-linear", "layers": {"last": 1}})
    plan = plan_adapter(adapter, family, params, arch.num_layers)
    config = LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, target_modules=plan.target_modules)
    peft_model = get_peft_model(model, config)
    created = [(n, tuple(p.shape)) for n, p in peft_model.named_parameters() if p.requires_grad]
    assert created == [(p.name, p.shape) for p in plan.params]


@cache
def _meta(family_name: str):
    family = next(f for f in all_families() if f.name == family_name)
    return _built(family, Path(tempfile.mkdtemp()), "meta")


# Kinds, names of several families (whole, with their parent, and a part of one that matches
# nothing), and block selections of every form, drawn together.
TARGET_WORDS = [
    "attention",
    "mlp",
    "norm",
    "q_proj",
    "self_attn.o_proj",
    "c_proj",
    "mlp.c_fc",
    "down_proj",
    "proj",
    "dense",
    "output.dense",
    "qkv_proj",
    "gate",
    "mlp.gate",
]
LAYERS = st.one_of(
    st.none(),
    st.builds(lambda n: {"last": n}, st.integers(0, 3)),
    st.builds(lambda n: {"first": n}, st.integers(0, 3)),
    st.lists(st.integers(0, 3), max_size=3),
    st.sampled_from(["0", "1", "0-1"]),
)
TARGETS = st.one_of(st.just("all-linear"), st.lists(st.sampled_from(TARGET_WORDS), max_size=4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(["gpt2", "llama", "mixtral", "bert", "phi3"]),
    targets=TARGETS,
    layers=LAYERS,
)
def test_plan_and_runtime_agree_on_any_selection(family: str, targets, layers) -> None:
    from freezegen.runtime.adapters import adapter_targets

    model, arch, params = _meta(family)
    fam = family_of(arch)
    kinds = {kind: list(names) for kind, names in fam.modules.items()}
    adapter = AdapterSpec.model_validate({"targets": targets, "layers": layers})
    plan = plan_adapter(adapter, fam, params, arch.num_layers)
    assert plan.target_modules == adapter_targets(
        model, adapter_rules(adapter, arch.num_layers), kinds
    )
    assert plan.target_modules == adapter_targets(model, adapter_rules(adapter, None), kinds)
