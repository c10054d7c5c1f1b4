"""The command line as users and CI call it: exit codes, formats, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen import __version__
from freezegen.cli import app

runner = CliRunner()
GOOD = "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: 128}\n"
WARN = GOOD + "scheduler: {warmup_steps: 5000}\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"freezegen {__version__}"


def test_clean_spec_exits_0(tmp_path):
    result = runner.invoke(app, ["lint", str(write(tmp_path, "a.yaml", GOOD)), "--no-config"])
    assert result.exit_code == 0, result.output
    assert "All checks passed (1 file)." in result.output


def test_errors_exit_1_with_located_lines(tmp_path):
    path = write(tmp_path, "a.yaml", GOOD.replace("seq_len", "seq_lne"))
    result = runner.invoke(app, ["lint", str(path), "--no-config"])
    assert result.exit_code == 1
    assert f"{path}:3:30: FG002 unknown key 'seq_lne' in batch" in result.output
    assert "did you mean 'seq_len'?" in result.output


def test_warnings_pass_unless_strict(tmp_path):
    path = str(write(tmp_path, "a.yaml", WARN))
    assert runner.invoke(app, ["lint", path, "--no-config"]).exit_code == 0
    assert runner.invoke(app, ["lint", path, "--no-config", "--strict"]).exit_code == 1


def test_select_ignore_flags_take_comma_lists(tmp_path):
    path = str(write(tmp_path, "a.yaml", WARN))
    result = runner.invoke(app, ["lint", path, "--strict", "--ignore", "FG101,FG114"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["lint", path, "--strict", "--ignore", "fg114"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["lint", path, "--strict", "--select", "FG001", "--select", "FG114"]
    )
    assert result.exit_code == 1, result.output


def test_json_format(tmp_path):
    path = str(write(tmp_path, "a.yaml", WARN))
    result = runner.invoke(app, ["lint", path, "--format", "json"])
    data = json.loads(result.output)
    assert [d["code"] for d in data["diagnostics"]] == ["FG114"]
    assert data["diagnostics"][0]["line"] == 4


@pytest.mark.parametrize(
    "args",
    [
        ["lint"],
        ["lint", "nope.yaml"],
        ["lint", "x.yaml", "--format", "xml"],
        ["lint", "x.yaml", "--select", "ZZ"],
        ["bogus"],
    ],
)
def test_usage_errors_exit_2(tmp_path, args, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "x.yaml", GOOD)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output


def test_schema_prints_and_checks(tmp_path, repo):
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "freezegen spec"
    out = tmp_path / "s.json"
    assert runner.invoke(app, ["schema", "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, ["schema", "-o", str(out), "--check"]).exit_code == 0
    out.write_text("{}")
    assert runner.invoke(app, ["schema", "-o", str(out), "--check"]).exit_code == 1


def test_committed_schema_matches_the_models(repo):
    """Drift test: refresh with `freezegen schema -o schemas/freezegen.schema.json`."""
    from freezegen.spec.schema import render_schema

    committed = (repo / "schemas" / "freezegen.schema.json").read_text(encoding="utf-8")
    assert committed == render_schema(), "run: freezegen schema -o schemas/freezegen.schema.json"


def test_real_process_and_module_entry_point(tmp_path):
    bad = write(tmp_path, "bad.freezegen.yaml", "version: 1\nmodel: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "freezegen", "lint", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "FG001" in proc.stdout and "Traceback" not in proc.stderr


def test_lint_does_not_import_heavy_modules(tmp_path):
    spec = write(tmp_path, "a.freezegen.yaml", WARN)
    code = (
        "import sys\n"
        "from freezegen.cli import main\n"
        f"sys.argv = ['freezegen', 'lint', {str(spec)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'libcst', 'jinja2') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
