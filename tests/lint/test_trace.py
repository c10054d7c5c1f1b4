"""`lint --trace`: memory rules on the traced estimate, cached by spec content."""

from __future__ import annotations

import json

import pytest

from freezegen.lint import Overrides, lint_paths
from freezegen.memory import cache

pytest.importorskip("transformers")

TIGHT = """\
version: 1
model: {hf_config: ./config.json}
batch: {micro_batch_size: 8, seq_len: 32}
hardware: {memory_gib: 0.001}
"""


@pytest.fixture
def tiny(tmp_path, repo, monkeypatch):
    monkeypatch.setenv("FREEZEGEN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "config.json").write_text((repo / "examples/tiny/config.json").read_text())
    spec = tmp_path / "run.freezegen.yaml"
    spec.write_text(TIGHT)
    return spec


def test_trace_reports_the_traced_peak_and_caches_it(tiny, tmp_path, monkeypatch):
    report = lint_paths([tiny], Overrides(trace=True, use_config=False))
    over = [d for d in report.diagnostics if d.code == "FG201"]
    assert len(over) == 1 and over[0].line == 4
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["method"] == "traced"

    def no_trace(spec):
        raise AssertionError("the cache should have answered")

    import freezegen.memory.traced as traced

    monkeypatch.setattr(traced, "estimate_traced", no_trace)
    again = lint_paths([tiny], Overrides(trace=True, use_config=False))
    assert [d.message for d in again.diagnostics] == [d.message for d in report.diagnostics]


def test_changed_spec_gets_a_new_trace(tiny, tmp_path):
    lint_paths([tiny], Overrides(trace=True, use_config=False))
    tiny.write_text(TIGHT.replace("micro_batch_size: 8", "micro_batch_size: 4"))
    lint_paths([tiny], Overrides(trace=True, use_config=False))
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


def test_corrupt_cache_entry_is_ignored(tiny, tmp_path):
    spec_obj = __import__("freezegen.spec", fromlist=["load_spec"]).load_spec(tiny)
    path = cache.cache_dir() / f"{cache.cache_key(spec_obj)}.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    report = lint_paths([tiny], Overrides(trace=True, use_config=False))
    assert any(d.code == "FG201" for d in report.diagnostics)


def test_failing_factory_is_reported_not_raised(tmp_path, monkeypatch):
    monkeypatch.setenv("FREEZEGEN_CACHE_DIR", str(tmp_path / "cache"))
    spec = tmp_path / "f.freezegen.yaml"
    spec.write_text(
        "version: 1\nmodel: {factory: 'no_such_module_xyz:build'}\n"
        "batch: {micro_batch_size: 2, seq_len: 8}\nhardware: {gpu: T4}\n"
    )
    report = lint_paths([spec], Overrides(trace=True, use_config=False))
    assert [d.code for d in report.diagnostics] == ["FG204"]
    assert "no_such_module_xyz" in report.diagnostics[0].message
