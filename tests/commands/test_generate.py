"""generate and schema write atomically, report what they wrote, and --check compares."""

from __future__ import annotations

import os
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


def test_a_resume_path_is_resolved_once_whatever_the_working_directory(tmp_path, monkeypatch):
    # The spec's folder was joined to an already-resolved resume path: RESUME doubled it, and
    # the script depended on where generate ran, so --check flipped between folders.
    folder = tmp_path / "project" / "tiny"
    shutil.copytree(EXAMPLE, folder)
    spec = folder / "freezegen.yaml"
    spec.write_text(
        spec.read_text("utf-8").replace("resume: auto", "resume: checkpoints/step-00000020.pt"),
        "utf-8",
    )
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "step-00000020.pt").write_bytes(b"")  # lint's FG112 looks for it
    (tmp_path / "out").mkdir()
    texts = []
    for cwd in (tmp_path, folder):
        monkeypatch.chdir(cwd)
        out = Path(os.path.relpath(tmp_path / "out", cwd)) / "train.py"
        result = generate.run(generate.Options(spec=Path(os.path.relpath(spec, cwd)), output=out))
        assert result.exit_code == 0, result.output
        texts.append((tmp_path / "out" / "train.py").read_text("utf-8"))
    assert texts[0] == texts[1]
    assert 'RESUME = "../project/tiny/checkpoints/step-00000020.pt"' in texts[0]
