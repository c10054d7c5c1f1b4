"""``check`` with ``fix`` reports the files it rewrote, and what is left, as data."""

from __future__ import annotations

from pathlib import Path

from freezegen.commands import check

SCRIPT = 'import torch\n\nmodel.load_state_dict(torch.load("ckpt.pt"))\n'


def test_fix_reports_the_files_it_wrote(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT, encoding="utf-8")
    untouched = tmp_path / "other.py"
    untouched.write_text("print('no torch here')\n", encoding="utf-8")
    result = check.run(check.Options(paths=(tmp_path,), fix=True, use_config=False))
    assert result.exit_code == 0 and result.written == [script]
    assert result.output[0] == ("stderr", "Fixed 1 finding(s) in 1 file(s).\n")
    assert "weights_only=True" in script.read_text(encoding="utf-8")
    assert "All checks passed (2 files)." in result.text("stdout")


def test_jobs_below_one_is_a_usage_error():
    result = check.run(check.Options(paths=(Path("."),), jobs=0))
    assert result.exit_code == 2
    assert result.text("stderr") == "freezegen: error: -j must be at least 1, not 0\n"


def test_unsafe_fixes_without_fix_is_a_usage_error():
    result = check.run(check.Options(paths=(Path("."),), unsafe_fixes=True))
    assert result.exit_code == 2
    assert result.text("stderr") == (
        "freezegen: error: --unsafe-fixes applies fixes, so it needs --fix\n"
    )
