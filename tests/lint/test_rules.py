"""Every rule's own examples: invalid ones raise its code (located), valid ones do not."""

from __future__ import annotations

import re

import pytest

from freezegen.diagnostics import Severity
from freezegen.lint import LintOptions
from freezegen.lint.engine import lint_text
from freezegen.lint.registry import all_rules

RULES = all_rules()
CASES = [(r, "valid", i, ex) for r in RULES for i, ex in enumerate(r.valid)] + [
    (r, "invalid", i, ex) for r in RULES for i, ex in enumerate(r.invalid)
]


def test_registry_discovers_rules_with_stable_shape():
    codes = [r.code for r in RULES]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert {"FG001", "FG002", "FG003", "FG004", "FG005", "FG101", "FG104"} <= set(codes)
    for rule in RULES:
        assert re.fullmatch(r"FG\d{3}", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.summary.endswith(".")
        assert rule.valid and rule.invalid, f"{rule.code} needs valid and invalid examples"
        assert rule.__module__.rsplit(".", 1)[-1] == rule.name.replace("-", "_"), (
            "one rule per module, named after the rule"
        )


@pytest.mark.parametrize(
    ("rule", "kind", "index", "example"), CASES, ids=[f"{r.code}-{k}-{i}" for r, k, i, _ in CASES]
)
def test_rule_examples(rule, kind, index, example):
    found = lint_text(
        example.encode("utf-8"),
        "example.freezegen.yaml",
        LintOptions(select=(rule.code,)) if not rule.default_enabled else None,
    )
    mine = [d for d in found if d.code == rule.code]
    if kind == "valid":
        assert not mine, f"{rule.code} fired on its valid example {index}: {mine}"
        return
    assert mine, f"{rule.code} missed its invalid example {index}; got {found}"
    lines = example.splitlines()
    for d in mine:
        assert 1 <= d.line <= max(len(lines), 1)
        assert d.col >= 1
        assert d.path == "example.freezegen.yaml"
        if d.severity is Severity.ERROR:
            assert rule.severity is Severity.ERROR or rule.code == "FG110"
