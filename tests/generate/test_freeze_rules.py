"""The script freezes exactly what freezegen's linter and estimator say it freezes."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.arch import from_hf_config
from freezegen.arch.families import all_families
from freezegen.arch.freeze import plan_freeze
from freezegen.arch.params import parameter_table
from freezegen.spec import load_spec
from tests.generate.conftest import generate, script_namespace, tiny_spec

FREEZES = [
    {"embeddings": True, "layers": {"first": 1}},
    {"layers": {"last": 1}, "modules": ["attention"]},
    {"layers": "0-1", "modules": ["mlp", "norm"], "except": ["*.bias"]},
    {"embeddings": True, "patterns": ["*norm*", "*.ln_f.*"], "except": ["*.1.*"]},
]


# Every head the family has a transformers class for (granite has no classification head).
HEADS = [
    pytest.param(f.name, head, id=f"{f.name}-{head}")
    for f in all_families()
    for head in ("causal-lm", "sequence-classification")
    if head in f.heads
]


@pytest.mark.parametrize(("family", "head"), HEADS)
def test_frozen_names_match_plan_freeze(family: str, head: str, tmp_path: Path) -> None:
    for i, freeze in enumerate(FREEZES):
        spec_path = tiny_spec(
            tmp_path / str(i), family, model={"hf_config": "./config.json", "head": head},
            freeze=freeze,
        )  # fmt: skip
        spec = load_spec(spec_path)
        arch = from_hf_config(spec.model.hf_config)
        expected = plan_freeze(spec.freeze, parameter_table(arch, head), arch.num_layers).frozen
        ns = script_namespace(generate(spec_path))
        model = ns["build_model"]()
        assert ns["frozen_parameters"](model) == expected, freeze
