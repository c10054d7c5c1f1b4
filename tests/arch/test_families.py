"""The contract every model family keeps, run for each family discovered in freezegen/arch/families.

Each family builds from its tiny config row (tests/family_configs.py) and must agree with the
transformers model it describes: the same parameters (names, order, shapes, count) on the meta
device, its module names giving each parameter its kind, the analytic estimate within 5% of the
traced one, and one freeze plan whether lint, the traced estimator or the generated script
resolves it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.arch import ArchitectureError, architecture_for, from_hf_config
from freezegen.arch.families import all_families, family_of
from freezegen.arch.family import CAUSAL_LM, SEQUENCE_CLASSIFICATION, Family
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import parameter_table
from freezegen.memory import estimate
from freezegen.runtime.freezing import module_kind
from freezegen.spec import load_spec
from tests.family_configs import TINY_CONFIGS

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

FAMILIES = all_families()
TOLERANCE = 0.05
FREEZES = [
    {"embeddings": True, "layers": {"first": 1}},
    {"layers": {"last": 1}, "modules": ["attention", "norm"]},
    {"layers": "0-1", "modules": ["mlp"], "patterns": ["*norm*", "*.ln_f.*"], "except": ["*.bias"]},
]


def _spec(tmp_path: Path, family: Family, head: str = CAUSAL_LM, **sections):
    from tests.generate.conftest import tiny_spec

    path = tiny_spec(
        tmp_path, family.name, model={"hf_config": "./config.json", "head": head}, **sections
    )
    return path, load_spec(path)


def _meta_model(spec):
    """The model the trace and the generated script build, on the meta device."""
    from freezegen.memory.traced import build_model

    with torch.device("meta"):
        model, _ = build_model(spec)
    return model


def test_every_family_has_one_tiny_config():
    assert sorted(TINY_CONFIGS) == [f.name for f in FAMILIES]


@pytest.mark.parametrize("head", [CAUSAL_LM, SEQUENCE_CLASSIFICATION])
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_parameter_table_is_the_models(family: Family, head: str, tmp_path: Path) -> None:
    _, spec = _spec(tmp_path, family, head)
    if head not in family.heads:
        # No transformers class for this head: refused wherever the architecture is asked for.
        with pytest.raises(ArchitectureError, match=f"no {head} head"):
            architecture_for(spec.model)
        return
    arch = from_hf_config(spec.model.hf_config)
    assert family_of(arch) is family
    assert arch.model_type in family.model_types
    table = parameter_table(arch, head, spec.model.num_labels or 2)
    real = list(_meta_model(spec).named_parameters())
    assert [(p.name, p.shape) for p in table] == [(n, tuple(t.shape)) for n, t in real]
    assert sum(p.numel for p in table) == sum(t.numel() for _, t in real)
    # The module names per kind give every parameter the kind the table says.
    kinds = {kind: list(names) for kind, names in family.modules.items()}
    assert [module_kind(p.name, kinds) for p in table] == [p.kind for p in table]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_analytic_within_tolerance_of_traced(family: Family, tmp_path: Path) -> None:
    _, spec = _spec(tmp_path, family)
    analytic, traced = estimate(spec, "analytic"), estimate(spec, "traced")
    assert analytic.total_parameters == traced.total_parameters
    assert analytic.trainable_parameters == traced.trainable_parameters
    error = analytic.peak_bytes / traced.peak_bytes - 1
    assert abs(error) <= TOLERANCE, (
        f"analytic {analytic.peak_bytes:,} vs traced {traced.peak_bytes:,}: {error:+.1%}"
    )


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_one_freeze_plan_in_lint_trace_and_script(family: Family, tmp_path: Path) -> None:
    from freezegen.memory.traced import _apply_freeze
    from tests.generate.conftest import generate, script_namespace

    for i, freeze in enumerate(FREEZES):
        path, spec = _spec(tmp_path / str(i), family, freeze=freeze)
        arch = from_hf_config(spec.model.hf_config)
        linted = plan_freeze(spec.freeze, parameter_table(arch), arch.num_layers).frozen
        assert linted, freeze
        traced = {n for n, p in _apply_freeze(_meta_model(spec), spec, arch) if not p.requires_grad}
        ns = script_namespace(generate(path))
        scripted = ns["frozen_parameters"](ns["build_model"]())
        assert linted == traced == scripted, freeze
