"""The ``adapter`` and ``quantization`` sections (issue 11): the schema takes them, the
estimators model LoRA with an nf4 / fp4 / int8 base, and what a command does not model it
refuses rather than answering as if the sections were not there."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.spec import load_text
from freezegen.spec.models import adapter_sections

BASE = """\
version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
"""
ADAPTER = "adapter: {r: 8, alpha: 16, dropout: 0.05, targets: [attention], layers: {last: 2}}\n"
QUANTIZED = "quantization: {weights: nf4, double_quant: true, compute: bf16}\n"


def _spec(text: str):
    result = load_text(textwrap.dedent(text), "spec.yaml")
    assert result.ok, result.diagnostics
    return result.spec


def test_the_sections_load_with_their_defaults():
    spec = _spec(BASE + "adapter: {}\nquantization: {}\n")
    assert spec.adapter.kind == "lora" and spec.adapter.r == 16 and spec.adapter.alpha == 32
    assert spec.adapter.targets == ["attention", "mlp"] and spec.adapter.layers is None
    assert spec.quantization.weights == "none" and spec.quantization.double_quant is True
    assert spec.quantization.library == "bitsandbytes"
    torchao = _spec(BASE + "quantization: {weights: int8, library: torchao}\n")
    assert torchao.quantization.library == "torchao"
    assert _spec(BASE + "adapter: {targets: all-linear}\n").adapter.targets == "all-linear"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("adapter: {r: 0}\n", "r"),
        ("adapter: {dropout: 1.0}\n", "dropout"),
        ("adapter: {targets: [q proj]}\n", "targets"),
        ("adapter: {kind: ia3}\n", "kind"),
        ("quantization: {weights: int4}\n", "weights"),
        ("quantization: {weights: nf4, library: torchao}\n", "library"),
        ("quantization: {weights: int8, library: quanto}\n", "library"),
        ("adapter: {rank: 8}\n", "rank"),
    ],
)
def test_bad_values_are_located_schema_errors(text: str, key: str):
    result = load_text(BASE + text, "spec.yaml")
    assert not result.ok
    (diagnostic,) = result.diagnostics
    assert diagnostic.line == 4 and key in diagnostic.message + str(diagnostic.col)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("", None),
        ("quantization: {weights: none}\n", None),
        (ADAPTER, "adapter"),
        (QUANTIZED, "quantization"),
        (ADAPTER + QUANTIZED, "adapter and quantization"),
    ],
)
def test_which_sections_change_the_run(extra: str, named: str | None):
    assert adapter_sections(_spec(BASE + extra)) == named


INT8 = "quantization: {weights: int8}\n"
TORCHAO = "quantization: {weights: int8, library: torchao}\n"
FSDP = "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 2, memory_gib: 80}\n"


@pytest.mark.parametrize(
    ("command", "extra", "says"),
    [
        (["estimate", "--trace"], ADAPTER + INT8 + FSDP, "FG118 int8 weights (bitsandbytes"),
        (["estimate"], ADAPTER + INT8 + "precision: bf16-pure\n", "bf16-pure"),
        (["estimate", "--trace"], ADAPTER + INT8 + "precision: bf16-pure\n", "bf16-pure"),
        (
            ["estimate"],
            ADAPTER + QUANTIZED + FSDP,
            "FG122 distributed.strategy: fsdp with a quantized base",
        ),
        (["estimate"], ADAPTER + QUANTIZED + "precision: bf16-pure\n", "bf16-pure"),
        (["generate"], ADAPTER + QUANTIZED + FSDP, "fsdp with a quantized base is not generated"),
        (["generate"], ADAPTER + TORCHAO + FSDP, "use distributed.strategy: ddp"),
        (["generate"], ADAPTER + TORCHAO, "nothing would be quantized"),
    ],
)
def test_commands_refuse_what_they_do_not_model(
    tmp_path: Path, command: list[str], extra: str, says: str
):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(BASE + extra)
    out = tmp_path / "train.py"
    args = [*command, str(spec)] + (["-o", str(out)] if command == ["generate"] else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "not" in result.output
    assert not out.exists()


@pytest.mark.parametrize("command", [["estimate"], ["estimate", "--trace"]])
def test_estimate_models_a_torchao_base(tmp_path: Path, command: list[str]):
    # GPT-2's Conv1D blocks are FG122 with torchao: a llama's linears are what it quantizes.
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(BASE.replace("gpt2", "tinyllama-1.1b") + ADAPTER + TORCHAO)
    result = CliRunner().invoke(app, [*command, str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)
    assert estimate["method"] == ("traced" if "--trace" in command else "analytic")
    assert 0 < estimate["trainable_parameters"] < estimate["total_parameters"]


@pytest.mark.parametrize("command", [["estimate"], ["estimate", "--trace"]])
def test_estimate_models_lora_under_fsdp2(tmp_path: Path, command: list[str]):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(BASE + ADAPTER + FSDP)
    result = CliRunner().invoke(app, [*command, str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)
    assert estimate["method"] == ("traced" if "--trace" in command else "analytic")
    assert 0 < estimate["trainable_parameters"] < estimate["total_parameters"]


@pytest.mark.parametrize("command", [["estimate"], ["estimate", "--trace"]])
def test_estimate_models_an_int8_base(tmp_path: Path, command: list[str]):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(BASE + ADAPTER + INT8)
    result = CliRunner().invoke(app, [*command, str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.stdout)
    assert estimate["method"] == ("traced" if "--trace" in command else "analytic")
    assert 0 < estimate["trainable_parameters"] < estimate["total_parameters"]


def test_lint_says_the_budget_was_not_checked(tmp_path: Path):
    spec = tmp_path / "freezegen.yaml"
    # int8 is modelled now (it was the refused example): a quantized base under bf16-pure is not.
    unmodelled = ADAPTER + INT8 + "precision: bf16-pure\n"
    spec.write_text(BASE + unmodelled + "hardware: {gpu: A100-80GB}\n")
    result = CliRunner().invoke(app, ["lint", str(spec), "--no-config"])
    assert "FG204" in result.output and "bf16-pure is not modelled" in result.output
    assert "FG201" not in result.output
