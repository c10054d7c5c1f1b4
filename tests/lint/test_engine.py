"""Selection, suppression and configuration as a user drives them."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.lint import ConfigError, LintOptions, Overrides, lint_paths, lint_text
from freezegen.rules.options import MAX_PYPROJECT_BYTES

SPEC = """\
version: 1
model: {preset: gpt2, num_labels: 3}
freeze: {patterns: ["*.nope.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
precision: bf16
hardware: {gpu: T4}
"""


def codes(diags):
    return sorted(d.code for d in diags)


def test_all_rules_run_by_default():
    assert codes(lint_text(SPEC)) == ["FG101", "FG102", "FG113"]


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        (("FG1",), (), ["FG101", "FG102", "FG113"]),
        (("FG101",), (), ["FG101"]),
        (("FG1",), ("FG11",), ["FG101", "FG102"]),
        (("FG",), ("FG102",), ["FG101", "FG113"]),
        (("FG113",), ("FG1",), ["FG113"]),  # the more specific prefix wins
    ],
)
def test_select_and_ignore_by_prefix(select, ignore, expected):
    assert codes(lint_text(SPEC, options=LintOptions(select=select, ignore=ignore))) == expected


def test_schema_errors_cannot_be_ignored():
    bad = SPEC.replace("seq_len", "seq_lenn")
    found = lint_text(bad, options=LintOptions(ignore=("FG0",)))
    assert "FG002" in codes(found)


def test_inline_suppression_on_the_line():
    text = SPEC.replace('["*.nope.*"]}', '["*.nope.*"]}  # freezegen: ignore[FG102]')
    assert codes(lint_text(text)) == ["FG101", "FG113"]
    text = SPEC.replace("precision: bf16", "precision: bf16  # freezegen: ignore")
    assert codes(lint_text(text)) == ["FG102", "FG113"]
    other = SPEC.replace("precision: bf16", "precision: bf16  # freezegen: ignore[FG102]")
    assert "FG101" in codes(lint_text(other))


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f"[project]\nname = 'x'\n\n[tool.freezegen]\n{table}\n"
    )
    sub = tmp_path / "configs" / "runs"
    sub.mkdir(parents=True)
    spec = sub / "run.freezegen.yaml"
    spec.write_text(SPEC)
    return spec


def test_pyproject_found_by_walking_up(tmp_path):
    spec = _project(tmp_path, 'ignore = ["FG113"]')
    assert codes(lint_paths([spec]).diagnostics) == ["FG101", "FG102"]
    assert codes(lint_paths([spec], Overrides(use_config=False)).diagnostics) == [
        "FG101",
        "FG102",
        "FG113",
    ]
    # command-line --select replaces the file's select; --ignore adds to its ignore
    report = lint_paths([spec], Overrides(select=("FG1",), ignore=("FG101",)))
    assert codes(report.diagnostics) == ["FG102"]


def test_pyproject_strict_makes_warnings_fail(tmp_path):
    spec = _project(tmp_path, 'strict = true\nselect = ["FG102"]')
    report = lint_paths([spec])
    assert codes(report.diagnostics) == ["FG102"] and report.failed
    assert not lint_paths([spec], Overrides(strict=False)).failed


@pytest.mark.parametrize(
    "table", ['select = ["XX1"]', "strict = 1", "colour = true", 'select = "FG1"']
)
def test_bad_pyproject_is_a_config_error(tmp_path, table):
    spec = _project(tmp_path, table)
    with pytest.raises(ConfigError, match=r"pyproject\.toml"):
        lint_paths([spec])


def test_a_pyproject_that_cannot_be_read_is_a_config_error_not_a_hang(tmp_path):
    spec = _project(tmp_path, 'select = ["FG1"]')
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.freezegen]\n" + "#" * MAX_PYPROJECT_BYTES)
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        lint_paths([spec])


def test_unknown_selector_on_command_line(tmp_path):
    with pytest.raises(ConfigError, match="selects no rule"):
        lint_paths([tmp_path], Overrides(select=("FG9",)))


def test_folders_are_searched_for_spec_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "freezegen.yaml").write_text(SPEC)
    (tmp_path / "a" / "x.freezegen.yml").write_text(SPEC)
    (tmp_path / "a" / "other.yaml").write_text("not: [a spec")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "freezegen.yaml").write_text("broken: [")
    report = lint_paths([tmp_path], Overrides(use_config=False))
    assert report.files == 2
    assert {Path(d.path).name for d in report.diagnostics} == {"freezegen.yaml", "x.freezegen.yml"}


def test_missing_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        lint_paths([tmp_path / "nope.yaml"])


def test_hf_config_device_file_is_refused_without_reading_it():
    found = lint_text(
        "version: 1\nmodel: {hf_config: /dev/zero}\nbatch: {micro_batch_size: 1, seq_len: 8}\n"
    )
    assert [(d.code, d.line) for d in found] == [("FG111", 2)]
    assert "not a regular file" in found[0].message


def test_path_too_long_for_the_file_system_is_a_finding_not_a_crash():
    name = "w" * 300
    found = lint_text(
        f"version: 1\nmodel: {{preset: gpt2, weights: ./{name}/{name}}}\n"
        "batch: {micro_batch_size: 1, seq_len: 8}\n"
    )
    assert [d.code for d in found] == ["FG112"]


def test_pyproject_shared_with_check_may_name_fg5_codes(tmp_path):
    spec = _project(tmp_path, 'ignore = ["FG505", "FG113"]')
    assert codes(lint_paths([spec]).diagnostics) == ["FG101", "FG102"]
