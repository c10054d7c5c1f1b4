"""`freezegen estimate` as users call it: the JSON contract, the table, and clean errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from freezegen.cli import app

runner = CliRunner()
CONTRACT = [
    "method",
    "peak_bytes",
    "budget_bytes",
    "overhead_bytes",
    "breakdown",
    "trainable_parameters",
    "total_parameters",
    "per_device",
]
TERMS = ["parameters", "gradients", "optimizer_states", "activations", "temporaries"]


def test_json_follows_the_design_contract(repo):
    spec = repo / "examples" / "gpt2-medium-freezing" / "freeze-6.freezegen.yaml"
    result = runner.invoke(app, ["estimate", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == CONTRACT
    assert list(data["breakdown"]) == TERMS
    assert data["method"] == "analytic" and data["per_device"] is True
    assert data["peak_bytes"] == sum(data["breakdown"].values())
    assert data["total_parameters"] == 354_823_168
    assert 0 < data["trainable_parameters"] < data["total_parameters"]
    assert data["budget_bytes"] == 81559 * 1024 * 1024


def test_freezing_lowers_the_estimate(repo):
    peaks = []
    for n in (0, 6, 12):
        spec = repo / "examples" / "gpt2-medium-freezing" / f"freeze-{n}.freezegen.yaml"
        out = runner.invoke(app, ["estimate", str(spec), "--format", "json"]).output
        peaks.append(json.loads(out)["peak_bytes"])
    assert peaks[0] > peaks[1] > peaks[2]


def test_table_shows_terms_budget_and_verdict(repo):
    spec = repo / "examples" / "tiny" / "freezegen.yaml"
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 0, result.output
    for word in ("activations", "optimizer states", "overhead", "budget", "headroom", "fits"):
        assert word in result.output


def test_factory_model_points_to_trace(tmp_path):
    spec = tmp_path / "f.freezegen.yaml"
    spec.write_text(
        "version: 1\nmodel: {factory: 'pkg.mod:build'}\nbatch: {micro_batch_size: 2, seq_len: 8}\n"
    )
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 2
    assert "--trace" in result.output


def test_invalid_spec_prints_located_diagnostics_and_exits_2(tmp_path):
    spec = tmp_path / "f.freezegen.yaml"
    spec.write_text("version: 1\nmodel: {preset: gpt3}\nbatch: {micro_batch_size: 2, seq_len: 8}\n")
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 2
    assert ":2:17: FG004" in result.output
