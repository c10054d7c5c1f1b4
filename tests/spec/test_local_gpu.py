"""``hardware: {gpu: auto}``: the local card, read without torch, is what every command budgets."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.spec import load_text
from freezegen.spec.local_gpu import ENV, _parse, local_gpu

SPEC = "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: 128}\n"


@pytest.mark.parametrize(
    ("line", "known"),
    [
        ("NVIDIA A100-SXM4-80GB, 81920, 8.0", "A100-80GB"),
        ("NVIDIA A100-PCIE-40GB, 40960, 8.0", "A100-40GB"),
        ("NVIDIA H100 80GB HBM3, 81559, 9.0", "H100-80GB"),
        ("NVIDIA H200, 143771, 9.0", "H200"),
        ("Tesla T4, 15360, 7.5", "T4"),
        ("NVIDIA GeForce RTX 4090, 24564, 8.9", "RTX-4090"),
        ("NVIDIA L4, 23034, 8.9", "L4"),
        ("NVIDIA L40S, 46068, 8.9", None),  # not the L4
        ("NVIDIA A100-SXM4-80GB, 40960, 8.0", "A100-40GB"),  # MIG-sized: by its memory
    ],
)
def test_a_driver_name_is_a_table_entry_only_when_model_and_memory_agree(line: str, known):
    assert _parse(line).known == known


def test_auto_becomes_the_local_card_or_no_budget(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV, "NVIDIA A100-SXM4-80GB, 81920, 8.0")
    spec = load_text(SPEC + "hardware: {gpu: auto, reserve_gib: 2}\n", "a.yaml").spec
    assert spec.hardware.gpu == "A100-80GB" and spec.hardware.reserve_gib == 2
    monkeypatch.setenv(ENV, "NVIDIA L40S, 46068, 8.9")
    spec = load_text(SPEC + "hardware: {gpu: auto}\n", "a.yaml").spec
    assert spec.hardware.gpu is None and spec.hardware.bf16 is True
    assert spec.hardware.memory_gib == pytest.approx(46068 / 1024)
    monkeypatch.setenv(ENV, "none")
    assert local_gpu() is None
    assert load_text(SPEC + "hardware: {gpu: auto}\n", "a.yaml").spec.hardware is None


def test_lint_says_when_there_is_no_gpu_to_budget_for(tmp_path, monkeypatch: pytest.MonkeyPatch):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(SPEC + "hardware: {gpu: auto}\n")
    result = CliRunner().invoke(app, ["lint", "--no-config", str(spec)])
    assert result.exit_code == 0 and "FG121" in result.stdout and "4:" in result.stdout
    monkeypatch.setenv(ENV, "NVIDIA GeForce RTX 4090, 24564, 8.9")
    result = CliRunner().invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 0 and "RTX-4090" not in result.stdout  # the budget, not the name
    assert "23.99 GiB" in result.stdout
