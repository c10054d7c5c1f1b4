"""A Hugging Face config whose model_type no family knows is not refused: lint warns (FG111),
``estimate`` measures it with the trace and says why, and ``generate`` writes a script that
trains it, freezing by the runtime module's module-name heuristics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freezegen.commands import estimate
from freezegen.lint import lint_paths
from freezegen.spec import load_spec
from tests.generate.conftest import (
    final_weights,
    generate,
    initial_state,
    run_script,
    tiny_spec,
)

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# Two architectures transformers builds and no freezegen family reads.
UNKNOWN = {
    "gptj": {
        "model_type": "gptj",
        "vocab_size": 64,
        "n_positions": 32,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "n_inner": 64,
        "rotary_dim": 8,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "opt": {
        "model_type": "opt",
        "vocab_size": 64,
        "max_position_embeddings": 32,
        "hidden_size": 32,
        "word_embed_proj_dim": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "ffn_dim": 64,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
}
# Embeddings, block 0's attention except its query projection, and the last block's norms.
FREEZE = {
    "embeddings": True,
    "layers": {"first": 1},
    "modules": ["attention"],
    "except": ["*.q_proj.*"],
}
EXPECTED = {
    "gptj": {
        "transformer.wte.weight",
        "transformer.h.0.attn.k_proj.weight",
        "transformer.h.0.attn.v_proj.weight",
        "transformer.h.0.attn.out_proj.weight",
    },
    "opt": {
        "model.decoder.embed_tokens.weight",
        "model.decoder.embed_positions.weight",
        *(
            f"model.decoder.layers.0.self_attn.{proj}.{w}"
            for proj in ("k_proj", "v_proj", "out_proj")
            for w in ("weight", "bias")
        ),
    },
}


def _spec(tmp_path: Path, model_type: str, **sections) -> Path:
    path = tiny_spec(tmp_path, freeze=FREEZE, **sections)
    (tmp_path / "config.json").write_text(json.dumps(UNKNOWN[model_type]))
    return path


@pytest.mark.parametrize("model_type", sorted(UNKNOWN))
def test_lint_warns_that_the_analytic_model_does_not_know_it(model_type, tmp_path) -> None:
    report = lint_paths([_spec(tmp_path, model_type)])
    found = report.diagnostics
    assert not report.failed
    assert [(d.code, d.severity.value) for d in found] == [("FG111", "warning")]
    assert f"model_type '{model_type}' is not one freezegen models analytically" in found[0].message


@pytest.mark.parametrize("model_type", sorted(UNKNOWN))
def test_estimate_uses_the_trace_with_a_note(model_type: str, tmp_path: Path) -> None:
    from freezegen.memory import estimate as estimate_memory

    path = _spec(tmp_path, model_type)
    result = estimate.run(estimate.Options(spec=path, format="json"))
    assert result.exit_code == 0, result
    printed = json.loads(result.text("stdout"))
    assert printed["method"] == "traced"
    assert printed["peak_bytes"] == estimate_memory(load_spec(path), "traced").peak_bytes
    assert "is not one freezegen models analytically" in result.text("stderr")
    assert "estimating with the trace" in result.text("stderr")


@pytest.mark.parametrize("model_type", sorted(UNKNOWN))
def test_trace_and_script_freeze_by_module_names(model_type: str, tmp_path: Path) -> None:
    from tests.runtime.test_freezing import _traced_frozen

    path = _spec(tmp_path, model_type)
    _, model, ns = initial_state(generate(path))
    assert ns["MODEL_TYPE"] == model_type and ns["MODULE_KINDS"] is None
    assert ns["frozen_parameters"](model) == _traced_frozen(load_spec(path)) == EXPECTED[model_type]


@pytest.mark.slow
def test_generated_script_trains_it_and_keeps_frozen_weights(tmp_path: Path) -> None:
    path = _spec(tmp_path, "gptj", activation_checkpointing={"layers": "every-2"})
    run = run_script(generate(path)).check()
    assert len(run.losses) >= 10
    initial, model, ns = initial_state(run.script)
    frozen = ns["frozen_parameters"](model)
    final = final_weights(run.script)
    for name, _ in model.named_parameters():
        same = torch.equal(initial[name], final[name])
        assert same == (name in frozen), name


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"model_type": "t5", "vocab_size": 64, "d_model": 32}, "no AutoModelForCausalLM"),
        ({"model_type": "no-such-model", "vocab_size": 64}, "no AutoModelForCausalLM"),
    ],
)
def test_generate_refuses_what_transformers_cannot_build(config, why, tmp_path: Path) -> None:
    from freezegen.commands import generate as generate_command

    path = tiny_spec(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = generate_command.run(generate_command.Options(spec=path, output=tmp_path / "t.py"))
    assert result.exit_code == 2
    assert why in result.text("stderr") and config["model_type"] in result.text("stderr")
    assert not (tmp_path / "t.py").exists()
