"""generate and schema write atomically and safely (or to stdout with -o -), report what they
wrote, and --check compares."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from freezegen.commands import estimate, generate, schema
from tests.unprivileged import as_user, folder_for_user, give_to_user

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


# --- where the output goes: standard output, and what is never overwritten -------------------


def tiny(folder: Path) -> Path:
    """A copy of examples/tiny in ``folder``; returns its spec."""
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    return folder / "freezegen.yaml"


def test_dash_writes_the_script_and_the_schema_to_stdout(tmp_path):
    spec = tiny(tmp_path / "tiny")
    printed = generate.run(generate.Options(spec=spec))
    dashed = generate.run(generate.Options(spec=spec, output=Path("-")))
    assert (dashed.exit_code, dashed.written) == (0, [])
    assert dashed.output == printed.output and dashed.text("stdout").startswith("#!")
    schema_dashed = schema.run(schema.Options(output=Path("-")))
    assert schema_dashed.output == schema.run(schema.Options()).output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]  # no file named "-"
    for check_dash in (
        generate.run(generate.Options(spec=spec, output=Path("-"), check=True)),
        schema.run(schema.Options(output=Path("-"), check=True)),
    ):
        assert check_dash.exit_code == 2
        assert "--check needs -o FILE, not -o - (standard output)" in check_dash.text("stderr")


def test_generate_never_overwrites_its_own_spec_or_model_config(tmp_path):
    spec = tiny(tmp_path)
    before = spec.read_bytes(), (tmp_path / "config.json").read_bytes()
    link = tmp_path / "link.yaml"
    link.symlink_to(spec.name)
    for output in (spec, link, tmp_path / "." / "freezegen.yaml"):
        result = generate.run(generate.Options(spec=spec, output=output))
        assert (result.exit_code, result.written, result.text("stdout")) == (2, [], "")
        assert result.text("stderr") == (
            f"freezegen: error: cannot write {output}: that is {spec}, which this command "
            "reads; write the output elsewhere\n"
        )
    config = generate.run(generate.Options(spec=spec, output=tmp_path / "config.json"))
    assert config.exit_code == 2 and "which this command reads" in config.text("stderr")
    through_link = generate.run(generate.Options(spec=link, output=spec))
    assert through_link.exit_code == 2 and "which this command reads" in through_link.text("stderr")
    assert (spec.read_bytes(), (tmp_path / "config.json").read_bytes()) == before
    assert link.is_symlink()


def test_generate_refuses_a_folder_a_fifo_and_a_read_only_file(tmp_path):
    spec = tiny(tmp_path / "tiny")
    folder = tmp_path / "out"
    folder.mkdir()
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    read_only = tmp_path / "read_only.py"
    read_only.write_text("old\n")
    read_only.chmod(0o444)
    reasons = {
        folder: "it is a folder, not a file",
        fifo: "it is a named pipe (FIFO), not a regular file",
        read_only: "the file is read-only (mode 0444); make it writable to replace it",
    }
    for output, reason in reasons.items():
        result = generate.run(generate.Options(spec=spec, output=output))
        assert (result.exit_code, result.written) == (2, [])
        assert result.text("stderr") == f"freezegen: error: cannot write {output}: {reason}\n"
    assert list(folder.iterdir()) == [] and stat.S_ISFIFO(fifo.stat().st_mode)
    assert read_only.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.py", "out", "read_only.py", "tiny"]


def test_generate_writes_through_a_symlink_and_keeps_the_mode(tmp_path):
    spec = tiny(tmp_path / "tiny")
    script = tmp_path / "train.py"
    script.write_text("old\n")
    script.chmod(0o755)
    link = tmp_path / "link.py"
    link.symlink_to(script.name)
    result = generate.run(generate.Options(spec=spec, output=link))
    assert (result.exit_code, result.written) == (0, [link])
    assert link.is_symlink() and script.read_text().startswith("#!")
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def _generate_into(spec: str, output: str) -> tuple[int, str]:
    result = generate.run(generate.Options(spec=Path(spec), output=Path(output)))
    return result.exit_code, result.text("stderr")


def test_as_a_user_generate_into_a_read_only_folder_is_a_clear_error(tmp_path):
    # as root first: everything generate imports is loaded before the child drops privileges
    assert _generate_into(str(tiny(tmp_path)), str(tmp_path / "train.py"))[0] == 0
    with folder_for_user() as folder:
        spec = tiny(folder / "tiny")
        locked = folder / "locked"
        locked.mkdir()
        give_to_user(*folder.rglob("*"))
        locked.chmod(0o555)
        code, stderr = as_user(_generate_into, str(spec), str(locked / "train.py"))
        assert (code, stderr) == (
            2,
            f"freezegen: error: cannot write {locked / 'train.py'}: the folder {locked} is "
            "read-only (no permission to create files in it)\n",
        )
        assert list(locked.iterdir()) == []


def test_a_fifo_spec_is_a_located_error_not_a_hang(tmp_path):
    fifo = tmp_path / "x.freezegen.yaml"
    os.mkfifo(fifo)  # an ordinary open would wait for a writer forever
    result = generate.run(generate.Options(spec=fifo, output=tmp_path / "train.py"))
    assert result.exit_code == 2
    assert result.text("stderr").startswith(
        f"{fifo}:1:1: FG006 cannot read file: it is a named pipe (FIFO), not a regular file"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.freezegen.yaml"]


def test_check_against_a_fifo_says_out_of_date_without_blocking(tmp_path):
    spec = tiny(tmp_path / "tiny")
    fifo = tmp_path / "train.py"
    os.mkfifo(fifo)
    result = generate.run(generate.Options(spec=spec, output=fifo, check=True))
    assert result.exit_code == 1 and "is out of date" in result.text("stderr")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


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


def test_a_spec_that_is_a_symlink_loop_is_explained_not_missing(tmp_path):
    loop = tmp_path / "loop.freezegen.yaml"
    loop.symlink_to(loop.name)
    for result in (
        generate.run(generate.Options(spec=loop)),
        estimate.run(estimate.Options(spec=loop)),
    ):
        assert result.exit_code == 2
        assert "FG006 cannot read file: a symlink loop" in result.text("stderr")
