"""model.pretrained: configs found in a Hugging Face cache built here (nothing is downloaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from freezegen import hub
from freezegen.lint import lint_paths
from freezegen.memory import estimate
from freezegen.spec import load_spec, load_text

COMMIT = "0123456789abcdef0123456789abcdef01234567"
CONFIG = {
    "model_type": "llama",
    "vocab_size": 64,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "intermediate_size": 64,
    "max_position_embeddings": 32,
}


def cache_model(cache: Path, repo_id: str, config: dict | str = CONFIG) -> Path:
    """Lay out ``repo_id`` in ``cache`` the way huggingface_hub does; return its snapshot."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    text = config if isinstance(config, str) else json.dumps(config)
    (snapshot / "config.json").write_text(text)
    return snapshot


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "hf-cache"
    folder.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return folder


def spec_file(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "run.freezegen.yaml"
    path.write_text(
        f"version: 1\nmodel: {{{model}}}\nbatch: {{micro_batch_size: 2, seq_len: 16}}\n"
        "hardware: {memory_gib: 8}\n"
    )
    return path


def test_the_cache_folder_follows_huggingface_hub(monkeypatch, tmp_path):
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub.hub_cache_dir() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub.hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub.hub_cache_dir() == tmp_path / "hub"


def test_find_cached_reads_the_ref_or_a_commit(cache):
    snapshot = cache_model(cache, "org/tiny")
    assert hub.find_cached("org/tiny").config == snapshot / "config.json"
    assert hub.find_cached("org/tiny", COMMIT).snapshot == snapshot
    with pytest.raises(hub.NotCached, match="hf download org/other"):
        hub.find_cached("org/other")
    with pytest.raises(hub.NotCached, match="not a Hugging Face model id"):
        hub.find_cached("../../etc")


def test_a_ref_that_is_a_fifo_is_no_ref_not_a_hang(cache):
    snapshot = cache_model(cache, "org/tiny")
    ref = snapshot.parent.parent / "refs" / "main"
    ref.unlink()
    os.mkfifo(ref)  # an ordinary open would wait for a writer forever
    with pytest.raises(hub.NotCached, match="hf download org/tiny"):
        hub.find_cached("org/tiny")
    assert hub.find_cached("org/tiny", COMMIT).snapshot == snapshot  # a commit needs no ref


def test_a_cached_pretrained_model_lints_and_estimates_like_its_config(cache, tmp_path):
    cache_model(cache, "org/tiny")
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    for name in ("pretrained", "local"):
        (tmp_path / name).mkdir()
    pretrained = spec_file(tmp_path / "pretrained", "pretrained: org/tiny")
    local = spec_file(tmp_path / "local", "hf_config: ../config.json")
    assert lint_paths([pretrained]).diagnostics == []
    for method in ("analytic", "traced"):
        ours = estimate(load_spec(pretrained), method)
        theirs = estimate(load_spec(local), method)
        assert ours.to_json_dict() == theirs.to_json_dict()
        assert ours.total_parameters > 0


def test_a_missing_model_is_a_located_fg112_that_says_how_to_download_it(cache, tmp_path):
    path = spec_file(tmp_path, "pretrained: org/missing")
    (finding,) = lint_paths([path]).diagnostics
    assert (finding.code, finding.line, finding.col) == ("FG112", 2, 21)
    assert "hf download org/missing" in finding.message
    assert str(cache) in finding.message


def test_an_unreadable_cached_config_is_fg111(cache, tmp_path):
    cache_model(cache, "org/broken", "{not json")
    (finding,) = lint_paths([spec_file(tmp_path, "pretrained: org/broken")]).diagnostics
    assert finding.code == "FG111"
    assert "not valid JSON" in finding.message


def test_fetch_config_stays_offline_or_downloads_through_the_hub(cache, monkeypatch):
    with pytest.raises(hub.NotCached):
        hub.fetch_config("org/tiny")  # HF_HUB_OFFLINE=1: no download is tried
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def download(repo_id, filename, revision, cache_dir):
        calls.append((repo_id, filename, revision, Path(cache_dir)))
        cache_model(Path(cache_dir), repo_id)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert hub.fetch_config("org/tiny").repo_id == "org/tiny"
    assert calls == [("org/tiny", "config.json", "main", cache)]

    def unreachable(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(hub.NotCached, match="not reachable"):
        hub.fetch_config("org/elsewhere")


def test_pretrained_and_weights_together_are_a_schema_error():
    result = load_text("version: 1\nmodel: {pretrained: org/tiny, weights: ./w}\n")
    assert result.spec is None
    assert any("loads its own weights" in d.message for d in result.diagnostics)
