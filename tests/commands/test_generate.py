"""generate and schema write atomically, report what they wrote, and --check compares."""

from __future__ import annotations

import shutil
from pathlib import Path

from freezegen.commands import generate, schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny"


def test_generate_writes_then_checks(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(EXAMPLE, folder)
    spec, out = folder / "freezegen.yaml", folder / "train.py"
    wrote = generate.run(generate.Options(spec=spec, output=out))
    assert (wrote.exit_code, wrote.written) == (0, [out])
    assert wrote.text("stderr") == f"wrote {out}\n"
    assert generate.run(generate.Options(spec=spec, output=out, check=True)).exit_code == 0
    out.write_text(out.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    stale = generate.run(generate.Options(spec=spec, output=out, check=True))
    assert stale.exit_code == 1 and stale.written == []
    assert stale.text("stderr") == (
        f"{out} is out of date; run: freezegen generate {spec} -o {out}\n"
    )


def test_generate_reports_a_broken_spec_as_located_diagnostics(tmp_path):
    spec = tmp_path / "bad.freezegen.yaml"
    spec.write_text("version: 1\nmodel: {preset: gpt2}\nbatch: {seq_lne: 8}\n", "utf-8")
    result = generate.run(generate.Options(spec=spec))
    assert result.exit_code == 2
    assert result.text("stderr").startswith(f"{spec}:3:")
    assert "FG002" in result.text("stderr") and result.text("stdout") == ""


def test_schema_check_needs_a_file():
    result = schema.run(schema.Options(check=True))
    assert result.exit_code == 2
    assert result.text("stderr") == "freezegen: error: --check needs -o FILE\n"
