"""What ``freezegen generate`` does with the adapter and quantization sections: it writes the
script of a LoRA / QLoRA spec, and refuses, located at the setting to blame (exit 2), the
combinations a script cannot run yet; nothing is written then."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.generate import GenerateError, render_script
from freezegen.spec import load_spec
from tests.generate.conftest import FACTORY_MODULE

BASE = """\
version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
"""
ADAPTER = "adapter: {r: 8, alpha: 16, targets: [attention], layers: {last: 2}}\n"
NF4 = "quantization: {weights: nf4}\n"
# Without an adapter, the frozen blocks are what is stored quantized.
FROZEN = "freeze: {layers: {first: 10}}\n"


def _generate(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(text)
    out = tmp_path / "train.py"
    result = CliRunner().invoke(app, ["generate", str(spec), "-o", str(out)])
    return result.exit_code, result.output, out


FSDP = "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 2, memory_gib: 24}\n"


@pytest.mark.parametrize(
    "extra", [ADAPTER, ADAPTER + NF4, ADAPTER + FSDP], ids=["lora", "qlora", "lora-fsdp"]
)
def test_generate_writes_adapter_scripts(tmp_path: Path, extra: str) -> None:
    code, output, out = _generate(tmp_path, BASE + extra)
    assert code == 0, output
    text = out.read_text()
    assert "import peft" in text and "attach_adapter(model)" in text
    assert ("BitsAndBytesConfig(**QUANTIZATION)" in text) == (NF4 in extra)
    # Under FSDP2 the adapters shard with their blocks; checkpoints hold what trains alone.
    assert ("options=TRAINED_ONLY" in text) == (FSDP in extra)


def test_generate_writes_a_quantized_base_without_an_adapter(tmp_path: Path) -> None:
    code, output, out = _generate(tmp_path, BASE + FROZEN + NF4)
    assert code == 0, output
    text = out.read_text()
    assert "BitsAndBytesConfig(**QUANTIZATION)" in text
    assert "import peft" not in text and "attach_adapter" not in text
    assert '"model": trained_state(model)' in text
    assert "dequantized(model).save_pretrained(temporary)" in text


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        (
            FROZEN + NF4 + "distributed: {strategy: fsdp}\n",
            6,
            "distributed.strategy: fsdp with a quantized base",
        ),
        (
            ADAPTER + NF4 + "distributed: {strategy: fsdp}\n",
            6,
            "distributed.strategy: fsdp with a quantized base",
        ),
        (FROZEN + NF4 + "precision: bf16-pure\n", 6, "precision: bf16-pure with quantization"),
        (FROZEN + NF4 + "compile: true\n", 6, "compile with quantization"),
        (
            NF4
            + "freeze: {layers: {first: 10}, schedule: [{at_step: 2, unfreeze: {layers: '0'}}]}\n",
            5,
            "freeze.schedule with quantization",
        ),
        (ADAPTER + NF4 + "precision: bf16-pure\n", 6, "precision: bf16-pure with quantization"),
        (ADAPTER + NF4 + "compile: true\n", 6, "compile with quantization"),
        (
            ADAPTER + NF4 + "freeze: {schedule: [{at_step: 2, unfreeze: {layers: '0'}}]}\n",
            6,
            "freeze.schedule with quantization",
        ),
    ],
    ids=[
        "quantized-base-fsdp",
        "quantized-fsdp",
        "quantized-base-bf16-pure",
        "quantized-base-compile",
        "quantized-base-thawing",
        "bf16-pure",
        "compile",
        "thawing-quantized",
    ],
)
def test_generate_refuses_what_a_script_cannot_run_at_the_setting(
    tmp_path: Path, extra: str, line: int, words: str
) -> None:
    code, output, out = _generate(tmp_path, BASE + extra)
    # Through the command, lint's own rule may refuse it first (FG117 for thawing a quantized
    # base): either way at the setting, exit 2, nothing written.
    assert code == 2, output
    assert f"freezegen.yaml:{line}:" in output
    assert "Traceback" not in output and not out.exists()
    # The generator refuses it too, for a caller of the library API that skips lint.
    with pytest.raises(GenerateError, match=re.escape(words)):
        render_script(load_spec(tmp_path / "freezegen.yaml"), tmp_path / "freezegen.yaml")


def test_generate_refuses_adapters_on_a_factory_model(tmp_path: Path) -> None:
    (tmp_path / "tiny_factory.py").write_text(FACTORY_MODULE)
    text = BASE.replace("{preset: gpt2}", '{factory: "tiny_factory:build"}') + ADAPTER
    code, output, out = _generate(tmp_path, text)
    assert code == 2, output
    assert "freezegen.yaml:4:" in output and "model.factory" in output and not out.exists()


def test_generate_refuses_quantizing_a_factory_model_once(tmp_path: Path) -> None:
    (tmp_path / "tiny_factory.py").write_text(FACTORY_MODULE)
    text = BASE.replace("{preset: gpt2}", '{factory: "tiny_factory:build"}') + FROZEN + NF4
    code, output, out = _generate(tmp_path, text)
    # Lint's FG118 says it; FG122 (the generator's refusal) does not say it again.
    assert code == 2, output
    assert "FG118" in output and "FG122" not in output and not out.exists()
    with pytest.raises(GenerateError, match=re.escape("quantization of a model.factory model")):
        render_script(load_spec(tmp_path / "freezegen.yaml"), tmp_path / "freezegen.yaml")
