"""The one spec gate: estimate, generate and codemod --spec stop on exactly the errors lint
reports (memory rules aside), with lint's located diagnostics, and honour its suppressions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from freezegen.commands import codemod, estimate, generate, lint
from freezegen.commands.result import CommandResult

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"
BASE = """version: 1
model: {hf_config: ./config.json}
batch: {micro_batch_size: 2, seq_len: 16}
"""
# FG003: a duplicate nested key; yaml would keep the last value, the models the first.
DUPLICATE = BASE + "train:\n  seed: 1\n  seed: 2\n"
# FG103: a block the 4-block model lacks (a consistency rule, FG1xx).
OUT_OF_RANGE = BASE + "freeze: {layers: [7]}\n"
# FG201: the run does not fit the card: lint fails, the other commands do not.
OVER_BUDGET = BASE + "hardware: {memory_gib: 0.01}\n"


def _spec(tmp_path: Path, text: str) -> Path:
    shutil.copy(EXAMPLE / "config.json", tmp_path / "config.json")
    spec = tmp_path / "t.freezegen.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def _lint_text(spec: Path) -> str:
    result = lint.run(lint.Options(paths=(spec,)))
    assert result.exit_code == 1
    return result.text("stdout")


def _runs(spec: Path, out: Path) -> dict[str, CommandResult]:
    script = out.parent / "script.py"
    script.write_text(
        "import torch\noptimizer = torch.optim.AdamW(model.parameters())\nloss = model(x)\n"
        "loss.backward()\noptimizer.step()\n",
        encoding="utf-8",
    )
    return {
        "estimate": estimate.run(estimate.Options(spec=spec)),
        "generate": generate.run(generate.Options(spec=spec, output=out)),
        "codemod": codemod.run(codemod.Options(paths=(script,), spec=spec)),
    }


@pytest.mark.parametrize("text", [DUPLICATE, OUT_OF_RANGE], ids=["FG003", "FG103"])
def test_an_error_lint_reports_stops_every_command_with_lints_diagnostics(tmp_path, text):
    spec = _spec(tmp_path, text)
    expected = _lint_text(spec)
    out = tmp_path / "train.py"
    for name, result in _runs(spec, out).items():
        assert result.exit_code == 2, name
        assert result.text("stderr") == expected, name
        assert result.text("stdout") == "" and result.written == [], name
    assert not out.exists()


def test_a_suppressed_finding_does_not_stop_them(tmp_path):
    spec = _spec(tmp_path, BASE + "freeze: {layers: [7]}  # freezegen: ignore[FG103]\n")
    assert lint.run(lint.Options(paths=(spec,))).exit_code == 0
    for name, result in _runs(spec, tmp_path / "train.py").items():
        assert result.exit_code == 0, (name, result.output)


def test_the_config_files_ignore_applies_as_in_lint(tmp_path):
    spec = _spec(tmp_path, OUT_OF_RANGE)
    (tmp_path / "pyproject.toml").write_text('[tool.freezegen]\nignore = ["FG103"]\n', "utf-8")
    assert lint.run(lint.Options(paths=(spec,))).exit_code == 0
    assert generate.run(generate.Options(spec=spec)).exit_code == 0


def test_a_malformed_config_is_a_usage_error(tmp_path):
    spec = _spec(tmp_path, BASE)
    (tmp_path / "pyproject.toml").write_text("[tool.freezegen]\nselect = 3\n", "utf-8")
    result = generate.run(generate.Options(spec=spec))
    assert result.exit_code == 2
    assert "select must be a list of codes" in result.text("stderr")


def test_schema_errors_cannot_be_suppressed(tmp_path):
    spec = _spec(tmp_path, DUPLICATE.replace("seed: 2", "seed: 2  # freezegen: ignore"))
    assert generate.run(generate.Options(spec=spec)).exit_code == 2


def test_a_run_that_does_not_fit_is_estimated_and_generated(tmp_path):
    spec = _spec(tmp_path, OVER_BUDGET)
    assert "FG201" in _lint_text(spec)
    for name, result in _runs(spec, tmp_path / "train.py").items():
        assert result.exit_code == 0, (name, result.output)


def test_memory_findings_are_left_out_of_what_stops_a_command(tmp_path):
    spec = _spec(tmp_path, OUT_OF_RANGE + "hardware: {memory_gib: 0.01}\n")
    assert "FG201" in _lint_text(spec)
    without_memory = lint.run(lint.Options(paths=(spec,), ignore=("FG2",))).text("stdout")
    result = generate.run(generate.Options(spec=spec))
    assert result.exit_code == 2 and result.text("stderr") == without_memory
    assert "FG103" in without_memory and "FG201" not in without_memory
