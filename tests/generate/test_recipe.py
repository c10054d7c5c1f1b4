"""The recipe: which template parts make up a script, for every combination of the choices that
pick parts; a single-process script's parts never mention ranks; no part is left unused."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

from freezegen.generate import render_script
from freezegen.generate.recipe import choose_parts, imports_for
from freezegen.spec import load_spec
from freezegen.spec.models import (
    AdapterSpec,
    EvalSpec,
    LoggingSpec,
    PlateauSpec,
    PlateauTrigger,
    QuantizationSpec,
    Spec,
    UnfreezeStep,
    UnfreezeTarget,
)
from tests.generate.conftest import REPO, tiny_spec

TEMPLATES = REPO / "templates"
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)))
DISTRIBUTED_WORDS = ("dist.", "RANK", "WORLD_SIZE")

STRATEGIES = ("none", "ddp", "fsdp")
SOURCES = ("synthetic", "factory", "text", "jsonl")
# File data beyond the source: each format, packing and streaming pick parts of their own.
FILE_DATA = (
    {"source": "parquet", "format": "completion", "packing": True},
    {"source": "saved", "format": "chat", "streaming": True},
)
SCHEDULERS = ("constant", "linear", "cosine")


@pytest.fixture(scope="module")
def base_spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    path = tiny_spec(tmp_path_factory.mktemp("recipe"))
    return load_spec(path)


MODELS = ("hf", "factory", "pretrained")
# No adapter, LoRA over the full-precision base, LoRA over an NF4 base, and an int8 base without
# an adapter (its frozen blocks stored quantized).
ADAPTERS = (None, "none", "nf4", "int8-frozen")


def variant(
    spec: Spec,
    strategy: str,
    source: str | dict,
    scheduler: str,
    ckpt: bool,
    model_kind: str = "hf",
    adapter: str | None = None,
    tensorboard: bool = False,
    evaluation: bool = False,
) -> Spec:
    # ``source``: a data source, or the data settings to change. Only the fields the recipe
    # reads change; the copies skip validation on purpose (a text
    # source without a path cannot be loaded, but it picks its parts all the same).
    model = spec.model.model_copy(
        update={
            "factory": "tiny_factory:build" if model_kind == "factory" else None,
            "pretrained": "org/name" if model_kind == "pretrained" else None,
        }
    )
    return spec.model_copy(
        update={
            "model": model,
            "distributed": spec.distributed.model_copy(update={"strategy": strategy}),
            "data": spec.data.model_copy(
                update=source if isinstance(source, dict) else {"source": source}
            ),
            "scheduler": spec.scheduler.model_copy(update={"name": scheduler}),
            "activation_checkpointing": ckpt,
            "adapter": None if adapter in (None, "int8-frozen") else AdapterSpec(),
            "quantization": None
            if adapter is None
            else QuantizationSpec(weights=adapter.removesuffix("-frozen")),
            "logging": LoggingSpec(tensorboard=tensorboard),
            **(_evaluation(spec) if evaluation else {}),
        }
    )


def _evaluation(spec: Spec) -> dict:
    """eval with keep_best and a plateau schedule entry: every evaluation part."""
    plateau = UnfreezeStep(
        when=PlateauTrigger(plateau=PlateauSpec(patience=2)), unfreeze=UnfreezeTarget(layers=[1])
    )
    return {
        "eval": EvalSpec(every_steps=2),
        "checkpoint": spec.checkpoint.model_copy(update={"keep_best": True}),
        "freeze": spec.freeze.model_copy(update={"schedule": [plateau]}),
    }


def every_recipe(spec: Spec):
    for strategy, source, scheduler, ckpt, kind, adapter, evaluation in itertools.product(
        STRATEGIES, SOURCES + FILE_DATA, SCHEDULERS, (False, True), MODELS, ADAPTERS, (False, True)
    ):
        # Half of them write TensorBoard events too (tied to ckpt: no more recipes to check).
        chosen = variant(spec, strategy, source, scheduler, ckpt, kind, adapter, ckpt, evaluation)
        yield strategy, choose_parts(chosen)


@functools.cache
def with_ancestors(name: str) -> tuple[str, ...]:
    """``name`` and every template it extends, nearest first (parsed once per name: the
    recipes name the same parts thousands of times)."""
    chain = (name,)
    source = ENV.loader.get_source(ENV, name)[0]
    for extends in ENV.parse(source).find_all(nodes.Extends):
        chain += with_ancestors(extends.template.value)
    return chain


def template_text(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def test_single_process_parts_never_mention_ranks(base_spec: Spec) -> None:
    checked = set()
    for strategy, parts in every_recipe(base_spec):
        if strategy != "none":
            continue
        for name in itertools.chain.from_iterable(parts.values()):
            for template in with_ancestors(name):
                text = template_text(template)
                found = [word for word in DISTRIBUTED_WORDS if word in text]
                assert not found, f"{template} (in a single-process script) mentions {found}"
                checked.add(template)
    # The skeleton every script shares is held to the same rule.
    assert not [w for w in DISTRIBUTED_WORDS if w in template_text("train.py.j2")]
    assert "parts/run/one.py.j2" in checked and "parts/step/one.py.j2" in checked


def test_distributed_recipes_use_the_rank_parts(base_spec: Spec) -> None:
    for strategy, parts in every_recipe(base_spec):
        named = set(itertools.chain.from_iterable(parts.values()))
        assert ("parts/processes/start.py.j2" in named) == (strategy != "none")
        assert parts["run"][-1] == f"parts/run/{'one' if strategy == 'none' else strategy}.py.j2"
        # Rank 0 records and reports memory for the job.
        ranks = "" if strategy == "none" else "-ranks"
        assert {f"parts/run/metrics{ranks}.py.j2", f"parts/run/memory{ranks}.py.j2"} <= named


def test_every_part_is_used_and_every_used_part_exists(base_spec: Spec) -> None:
    used = set()
    for _, parts in every_recipe(base_spec):
        for name in itertools.chain.from_iterable(parts.values()):
            assert (TEMPLATES / name).is_file(), f"the recipe names {name}, which does not exist"
            used.update(with_ancestors(name))
    on_disk = {p.relative_to(TEMPLATES).as_posix() for p in (TEMPLATES / "parts").rglob("*.j2")}
    assert on_disk - used == set(), "parts no recipe uses"


def test_imports_follow_the_parts(base_spec: Spec) -> None:
    one = variant(base_spec, "none", "synthetic", "cosine", False)
    imports = imports_for(one, choose_parts(one))
    assert "import math" in imports["standard"] and "import importlib" not in imports["standard"]
    assert not any("distributed" in line for line in imports["third_party"])
    fsdp = variant(base_spec, "fsdp", "factory", "constant", True, "factory")
    imports = imports_for(fsdp, choose_parts(fsdp))
    # (math is imported by every script now: metrics.jsonl writes non-finite floats as null.)
    assert "import importlib" in imports["standard"]
    assert "import torch.distributed as dist" in imports["third_party"]
    assert "from torch.utils.checkpoint import checkpoint" in imports["third_party"]
    # ruff's isort order: plain imports, then from-imports, each sorted by module.
    plain = [line for line in imports["third_party"] if line.startswith("import ")]
    assert imports["third_party"][: len(plain)] == plain == sorted(plain)
    # TensorBoard is imported where events are opened, after check_requirements, never at the
    # top: a missing tensorboard is then a message, not an ImportError.
    logged = variant(base_spec, "none", "synthetic", "cosine", False, tensorboard=True)
    imports = imports_for(logged, choose_parts(logged))
    assert not any("tensorboard" in line for line in imports["third_party"])


def test_optional_libraries_are_imported_after_their_versions_are_checked(
    base_spec: Spec,
) -> None:
    for strategy, adapter in itertools.product(("none", "ddp"), ADAPTERS):
        spec = variant(base_spec, strategy, "synthetic", "constant", False, "hf", adapter)
        imports = imports_for(spec, choose_parts(spec))
        assert "import peft" not in imports["third_party"]
        assert "from importlib import metadata" in imports["standard"]
        assert ("import safetensors.torch" in imports["third_party"]) == (adapter is not None)
        # Only a base built from its config goes through a temporary folder to be quantized.
        assert ("import tempfile" in imports["standard"]) == (adapter in ("nf4", "int8-frozen"))


def test_a_rendered_single_process_script_never_mentions_ranks(tmp_path: Path) -> None:
    spec_path = tiny_spec(tmp_path, "llama", precision="fp16", activation_checkpointing=True)
    text = render_script(load_spec(spec_path), spec_path, tmp_path)
    assert not [word for word in (*DISTRIBUTED_WORDS, "torch.distributed") if word in text]
