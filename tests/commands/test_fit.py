"""``freezegen fit``: the table of values tried, the winner written into the spec with its
comments and layout, ``--diff``, and the located refusals."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from freezegen.cli import app

SPEC = """\
# Bottom-frozen Llama-2-7B on one 80 GB card.
version: 1
model: {preset: llama-2-7b}
precision: bf16
freeze: {embeddings: true, layers: {first: 24}}   # train the top 8 blocks
batch:
  micro_batch_size: 4      # per GPU
  grad_accum_steps: 8
  seq_len: 2048
hardware: {gpu: A100-80GB}
"""


def _fit(*args: str):
    return CliRunner().invoke(app, ["fit", *args])


def test_the_winner_is_written_with_the_comments_kept(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(SPEC)
    result = _fit(str(spec), "--maximize", "batch.micro_batch_size")
    assert result.exit_code == 0, result.output
    assert "fits with 10% spare" in result.stdout and "batch.micro_batch_size" in result.stdout
    assert (
        spec.read_text()
        == SPEC.replace(
            "  micro_batch_size: 4      # per GPU\n  grad_accum_steps: 8\n",
            "  micro_batch_size: 16      # per GPU\n  grad_accum_steps: 2\n",
        )
        + "activation_checkpointing: true\n"
    )
    lint = CliRunner().invoke(app, ["lint", "--no-config", str(spec)])
    assert lint.exit_code == 0, lint.output
    again = _fit(str(spec), "--maximize", "batch.micro_batch_size")
    assert again.exit_code == 0 and "nothing to write" in again.stderr


def test_diff_writes_nothing(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(SPEC)
    result = _fit(str(spec), "--maximize", "batch.seq_len", "--multiple-of", "128", "--diff")
    assert result.exit_code == 0, result.output
    assert "+  seq_len: 4096" in result.stdout and spec.read_text() == SPEC


def test_a_gpu_is_fitted_and_written(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(SPEC)
    result = _fit(str(spec), "--maximize", "batch.micro_batch_size", "--gpu", "H100-80GB")
    assert result.exit_code == 0, result.output
    assert "hardware: {gpu: H100-80GB}" in spec.read_text()


def test_nothing_that_fits_exits_1_and_writes_nothing(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    text = SPEC.replace("A100-80GB", "T4").replace("precision: bf16", "precision: fp32")
    text = text.replace("freeze: {embeddings: true, layers: {first: 24}}", "freeze: {}")
    spec.write_text(text)
    result = _fit(str(spec), "--maximize", "batch.micro_batch_size")
    assert result.exit_code == 1 and "no value of batch.micro_batch_size fits" in result.stderr
    assert spec.read_text() == text


def test_usage_errors_are_located(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(SPEC.replace("hardware: {gpu: A100-80GB}", "hardware: {memory_gib: 24}"))
    gpu = _fit(str(spec), "--maximize", "batch.seq_len", "--gpu", "L4")
    assert gpu.exit_code == 2 and "memory_gib" in gpu.output
    key = _fit(str(spec), "--maximize", "precision")
    assert key.exit_code == 2 and "not a whole number" in key.output
    headroom = _fit(str(spec), "--maximize", "batch.seq_len", "--headroom", "1.5")
    assert headroom.exit_code == 2 and "--headroom 1.5" in headroom.output
