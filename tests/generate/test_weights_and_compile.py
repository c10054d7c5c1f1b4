"""model.weights (a Hugging Face folder or a state_dict file) and compile: true, executed."""

from __future__ import annotations

import pytest
import torch

from tests.generate.conftest import (
    TINY_CONFIGS,
    final_weights,
    generate,
    initial_state,
    run_script,
    tiny_spec,
)

# Each test runs generated scripts in subprocesses: seconds each.
pytestmark = pytest.mark.slow

transformers = pytest.importorskip("transformers")


def _pretrained(folder):
    torch.manual_seed(123)  # not the spec's seed: loaded weights must differ from a fresh init
    config = transformers.GPT2Config(**TINY_CONFIGS["gpt2"])
    model = transformers.GPT2LMHeadModel(config)
    model.save_pretrained(folder)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_hf_folder_weights_are_loaded_and_frozen_ones_kept(tmp_path):
    saved = _pretrained(tmp_path / "pretrained")
    spec = tiny_spec(
        tmp_path,
        model={"hf_config": "./config.json", "weights": "./pretrained"},
        freeze={"embeddings": True, "layers": {"first": 1}},
        train={"max_steps": 6},
    )
    script = generate(spec)
    start, _, _ = initial_state(script)
    for name, tensor in saved.items():
        if name in start:
            assert torch.equal(start[name], tensor), name
    run_script(script).check()
    final = final_weights(script)
    assert torch.equal(final["transformer.wte.weight"], saved["transformer.wte.weight"])
    assert torch.equal(
        final["transformer.h.0.attn.c_attn.weight"], saved["transformer.h.0.attn.c_attn.weight"]
    )
    assert not torch.equal(
        final["transformer.h.1.attn.c_attn.weight"], saved["transformer.h.1.attn.c_attn.weight"]
    )


def test_state_dict_file_weights_for_a_factory_model(tmp_path, factory_module):
    import sys

    sys.path.insert(0, str(factory_module))
    try:
        from tiny_factory import build
    finally:
        sys.path.remove(str(factory_module))
    torch.manual_seed(321)
    model = build()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    spec = tiny_spec(
        tmp_path,
        model={"factory": "tiny_factory:build", "weights": "./weights.pt"},
        data={"source": "factory", "factory": "tiny_factory:dataset"},
        train={"max_steps": 4},
    )
    script = generate(spec)
    start, _, _ = initial_state(script)
    for name, tensor in model.state_dict().items():
        assert torch.equal(start[name], tensor), name


def test_compiled_model_trains(tmp_path):
    spec = tiny_spec(tmp_path, compile=True, train={"max_steps": 4, "log_every": 1})
    run = run_script(generate(spec), timeout=600).check()
    assert len(run.losses) == 4 and all(loss == loss for loss in run.losses)
