"""Each tool owns a code space; rule lookup and config validation go through it."""

from __future__ import annotations

import pytest

from freezegen.check.registry import all_rules as check_rules
from freezegen.lint import ConfigError, Overrides, lint_paths
from freezegen.lint.registry import all_rules as lint_rules
from freezegen.rules.catalog import CODE_SPACES, foreign_codes, owner, rule_for


def test_every_rule_lies_in_its_tools_space():
    assert {owner(r.code) for r in lint_rules()} == {"lint"}
    assert {owner(r.code) for r in check_rules()} == {"check"}
    assert owner("FG4") is None


def test_rule_for_finds_the_rule_of_either_tool():
    assert rule_for("FG101") is next(r for r in lint_rules() if r.code == "FG101")
    assert rule_for("FG505") is next(r for r in check_rules() if r.code == "FG505")
    assert rule_for("FG199") is None and rule_for("XX1") is None


def test_foreign_codes_cover_the_other_spaces_only():
    foreign = foreign_codes("lint")
    assert len(foreign) == 100 * len(CODE_SPACES["check"])
    assert "FG505" in foreign and "FG599" in foreign and "FG101" not in foreign
    assert "FG101" in foreign_codes("check") and "FG505" not in foreign_codes("check")


def _project(folder, ignore):
    folder.mkdir()
    (folder / "a.freezegen.yaml").write_text("version: 1\nmodel: {preset: gpt2}\n", "utf-8")
    (folder / "pyproject.toml").write_text(f"[tool.freezegen]\nignore = {ignore}\n", "utf-8")
    return folder


def test_config_names_codes_of_either_tool_but_not_unknown_ones(tmp_path):
    assert lint_paths([_project(tmp_path / "ok", '["FG505"]')], Overrides()).files == 1
    with pytest.raises(ConfigError, match="selects no rule"):
        lint_paths([_project(tmp_path / "bad", '["FG4"]')], Overrides())
