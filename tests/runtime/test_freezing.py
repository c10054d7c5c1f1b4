"""One freeze selection, one answer: lint (arch/freeze.py, where the architecture is known), the
traced estimator and the generated script name the same parameters, for a model of every family
and for factory models, with ``except`` and a schedule's unfreeze entries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from freezegen.arch import from_hf_config
from freezegen.arch.families import all_families
from freezegen.arch.freeze import plan_freeze, select
from freezegen.arch.params import parameter_table
from freezegen.spec import load_spec
from tests.generate.conftest import FACTORY_MODULE, generate, initial_state, tiny_spec

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

RUNTIME = Path(__file__).resolve().parents[2] / "freezegen" / "runtime"
FREEZE = {
    "embeddings": True,
    "layers": {"first": 2},
    "modules": ["attention", "norm"],
    "patterns": ["*.bias"],
    "except": ["*norm*", "*ln_*"],
    "schedule": [
        {"at_step": 4, "unfreeze": {"layers": {"last": 1}, "modules": ["attention"]}},
        {"at_step": 8, "unfreeze": {"embeddings": True, "patterns": ["*.bias"]}},
    ],
}


def _traced_frozen(spec) -> set[str]:
    from torch._subclasses.fake_tensor import FakeTensorMode

    from freezegen.memory.traced import _apply_freeze, build_model

    with FakeTensorMode(), torch.device("cpu"):
        model, arch = build_model(spec)
        named = _apply_freeze(model, spec, arch)
    return {name for name, p in named if not p.requires_grad}


def _scripted(spec_path: Path) -> tuple[set[str], list[set[str]]]:
    """What the generated script freezes, and what each of its UNFREEZE entries selects."""
    _, model, ns = initial_state(generate(spec_path))
    frozen = ns["frozen_parameters"](model)
    thawed = [ns["select_parameters"](model, e, ns["MODULE_KINDS"]) for e in ns["UNFREEZE"]]
    return frozen, thawed


@pytest.mark.parametrize("family", [f.name for f in all_families()])
def test_known_family_freezes_alike_in_lint_trace_and_script(family: str, tmp_path: Path) -> None:
    path = tiny_spec(tmp_path, family, freeze=FREEZE)
    spec = load_spec(path)
    arch = from_hf_config(spec.model.hf_config)
    params = parameter_table(arch)
    plan = plan_freeze(spec.freeze, params, arch.num_layers)
    unfrozen = [
        select(s.unfreeze, params, arch.num_layers, ("schedule", i)).names
        for i, s in enumerate(spec.freeze.schedule)
    ]
    scripted, thawed = _scripted(path)
    assert plan.frozen
    assert not any("norm" in n or "ln_" in n for n in plan.frozen)  # except wins
    assert plan.frozen == _traced_frozen(spec) == scripted
    assert unfrozen == thawed
    assert all(unfrozen)


FACTORY_CASES = {
    # The case the trace used to get wrong: its factory heuristic gave every kind "other".
    "first-2-attention": (
        {"layers": {"first": 2}, "modules": ["attention"]},
        {
            "blocks.0.attn.weight",
            "blocks.0.attn.bias",
            "blocks.1.attn.weight",
            "blocks.1.attn.bias",
        },
    ),
    "last-1-norm-except-bias": (
        {"layers": {"last": 1}, "modules": ["norm", "mlp"], "except": ["*.bias"]},
        {"blocks.2.norm.weight", "blocks.2.mlp.0.weight", "blocks.2.mlp.3.weight"},
    ),
    "embeddings-range-patterns": (
        {"embeddings": True, "layers": "1-2", "modules": ["mlp"], "patterns": ["head.*"]},
        {"embed.weight", "head.weight", "head.bias"}
        | {f"blocks.{i}.mlp.{j}.{w}" for i in (1, 2) for j in (0, 3) for w in ("weight", "bias")},
    ),
}


@pytest.mark.parametrize("case", sorted(FACTORY_CASES))
def test_factory_model_freezes_alike_in_trace_and_script(case: str, tmp_path: Path) -> None:
    freeze, expected = FACTORY_CASES[case]
    (tmp_path / "tiny_factory.py").write_text(FACTORY_MODULE)
    schedule = [{"at_step": 4, "unfreeze": {"layers": {"last": 2}, "modules": ["attention"]}}]
    path = tiny_spec(
        tmp_path,
        model={"factory": "tiny_factory:build"},
        freeze={**freeze, "schedule": schedule},
        data={"source": "factory", "factory": "tiny_factory:dataset"},
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        traced = _traced_frozen(load_spec(path))
    finally:
        sys.path.remove(str(tmp_path))
    scripted, thawed = _scripted(path)
    assert traced == scripted == expected
    assert thawed == [{f"blocks.{i}.attn.{w}" for i in (1, 2) for w in ("weight", "bias")}]


def test_runtime_modules_import_nothing_from_freezegen_but_runtime_modules() -> None:
    # Another runtime module's source travels with a script (generate/runtime.py's
    # runtime_requires); nothing else of freezegen does.
    for file in RUNTIME.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            outside = [
                n
                for n in names
                if n.split(".")[0] == "freezegen" and n.rpartition(".")[0] != "freezegen.runtime"
            ]
            assert not outside, file
