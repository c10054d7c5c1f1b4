"""``run`` hands back what the CLI prints; it prints nothing itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

from freezegen.commands import lint

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny" / "freezegen.yaml"


def test_findings_come_back_as_text(capsys):
    result = lint.run(lint.Options(paths=(EXAMPLE,), format="json", use_config=False))
    assert result.exit_code == 0 and result.written == []
    assert json.loads(result.text("stdout"))["diagnostics"] == []
    assert capsys.readouterr() == ("", "")


def test_errors_fail_the_run(tmp_path):
    spec = tmp_path / "a.freezegen.yaml"
    spec.write_text("version: 1\nmodel: {preset: gpt2}\nbatch: {seq_lne: 8}\n", "utf-8")
    result = lint.run(lint.Options(paths=(spec,), use_config=False))
    assert result.exit_code == 1 and "FG002" in result.text("stdout")


def test_usage_errors_exit_2(tmp_path):
    bad_format = lint.run(lint.Options(paths=(EXAMPLE,), format="xml"))
    assert bad_format.exit_code == 2 and "unknown --format 'xml'" in bad_format.text("stderr")
    missing = lint.run(lint.Options(paths=(tmp_path / "nope.yaml",)))
    assert missing.exit_code == 2 and "no such file or folder" in missing.text("stderr")
    selector = lint.run(lint.Options(paths=(EXAMPLE,), select=("FG9",)))
    assert selector.exit_code == 2 and "selects no rule" in selector.text("stderr")


def test_a_fifo_and_a_symlink_loop_are_located_errors_not_hangs(tmp_path):
    fifo = tmp_path / "x.freezegen.yaml"
    os.mkfifo(fifo)  # an ordinary open would wait for a writer forever
    loop = tmp_path / "loop.freezegen.yaml"
    loop.symlink_to(loop.name)  # used to be an internal error (Path.resolve raised)
    expected = {
        str(fifo): "cannot read file: it is a named pipe (FIFO), not a regular file",
        str(loop): "cannot read file: a symlink loop (too many levels of symbolic links)",
    }
    for paths in ((tmp_path,), (fifo, loop)):
        result = lint.run(lint.Options(paths=paths, format="json", use_config=False))
        assert result.exit_code == 1
        found = json.loads(result.text("stdout"))["diagnostics"]
        assert {d["path"]: d["message"] for d in found} == expected
        assert {(d["code"], d["line"]) for d in found} == {("FG006", 1)}


def test_a_folder_without_specs_warns_instead_of_passing_checks(tmp_path):
    (tmp_path / "notes.yaml").write_text("a: 1\n", "utf-8")
    result = lint.run(lint.Options(paths=(tmp_path,), use_config=False))
    assert result.exit_code == 0 and result.text("stdout") == ""
    assert result.text("stderr") == (
        f"freezegen: warning: no spec files (*freezegen.yaml, *freezegen.yml) found in {tmp_path}\n"
    )
    as_json = lint.run(lint.Options(paths=(tmp_path,), format="json", use_config=False))
    assert json.loads(as_json.text("stdout"))["summary"]["files"] == 0  # still a valid document
    assert "no spec files" in as_json.text("stderr")
