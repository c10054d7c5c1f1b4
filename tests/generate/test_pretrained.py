"""model.pretrained in a generated script: the weights of the cached Hub model, then training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from freezegen.generate import render_script
from freezegen.spec import load_spec
from tests.generate.conftest import final_weights, run_script, tiny_spec
from tests.test_hub import cache_model

transformers = pytest.importorskip("transformers")


@pytest.fixture
def cached_llama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """A tiny llama with weights in a Hugging Face cache laid out here; returns its weights."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = cache_model(cache, "org/tiny-llama")
    config = transformers.AutoConfig.from_pretrained(snapshot)
    torch.manual_seed(99)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(snapshot)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_the_script_starts_from_the_cached_weights_and_trains(tmp_path, cached_llama):
    spec = tiny_spec(
        tmp_path / "run",
        "llama",
        model={"pretrained": "org/tiny-llama"},
        freeze={"embeddings": True, "layers": {"first": 1}},
        train={"max_steps": 3, "log_every": 1},
    )
    script = spec.parent / "train.py"
    script.write_text(render_script(load_spec(spec), spec, spec.parent))
    assert 'PRETRAINED = "org/tiny-llama"' in script.read_text()
    # huggingface_hub reads HF_HUB_CACHE / HF_HUB_OFFLINE when imported: only a new process
    # (as a user runs the script) sees the cache laid out here.
    run = run_script(script).check()
    assert len(run.losses) == 3
    final = final_weights(script)
    frozen = [n for n in cached_llama if "embed_tokens" in n or ".layers.0." in n]
    trained = [n for n in cached_llama if ".layers.1." in n and n.endswith("proj.weight")]
    assert frozen and trained
    for name in frozen:  # bit-identical to the cached weights: they were loaded, not drawn
        assert torch.equal(final[name], cached_llama[name]), name
    for name in trained:
        assert not torch.equal(final[name], cached_llama[name]), name


def test_generate_reports_a_model_missing_from_the_cache(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from freezegen.cli import app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = tiny_spec(tmp_path, "llama", model={"pretrained": "org/absent"})
    result = CliRunner().invoke(app, ["generate", str(spec), "-o", str(tmp_path / "train.py")])
    assert result.exit_code == 2
    assert "hf download org/absent" in result.output
    assert not (tmp_path / "train.py").exists()


@pytest.mark.slow
def test_a_qlora_script_quantizes_the_cached_weights_while_loading_them(tmp_path, cached_llama):
    pytest.importorskip("peft")
    pytest.importorskip("bitsandbytes")
    spec = tiny_spec(
        tmp_path / "run",
        "llama",
        model={"pretrained": "org/tiny-llama"},
        adapter={"r": 4, "targets": ["q_proj"], "merge": True},
        quantization={"weights": "nf4"},
        precision="bf16",
        train={"max_steps": 3, "log_every": 1},
    )
    script = spec.parent / "train.py"
    script.write_text(render_script(load_spec(spec), spec, spec.parent))
    assert "return load_quantized(PRETRAINED, config)" in script.read_text()
    run = run_script(script).check()
    assert len(run.losses) == 3
    merged = transformers.AutoModelForCausalLM.from_pretrained(
        spec.parent / "checkpoints" / "final" / "merged"
    ).state_dict()
    # Embeddings are neither quantized nor trained: the cached ones, bit for bit. A linear
    # without an adapter is the cached weight through NF4 (double quantization) and back.
    name = "model.embed_tokens.weight"
    assert torch.equal(merged[name], cached_llama[name])
    import bitsandbytes.functional as bnbf

    name = "model.layers.0.mlp.up_proj.weight"
    packed, state = bnbf.quantize_4bit(
        cached_llama[name], quant_type="nf4", compress_statistics=True
    )
    round_trip = bnbf.dequantize_4bit(packed, state)
    assert not torch.equal(round_trip, cached_llama[name])
    assert torch.equal(merged[name], round_trip)
