"""Every check rule's own examples: invalid ones raise its code (located), valid ones do not.

The rules are discovered, so a new rule module is tested by its examples without a line here.
Fixable rules also have their fixes applied to every invalid example (the unsafe ones with
``unsafe_fixes``): the output must parse, must no longer raise the code, and must be a fixed point
(fixing it again changes nothing).
"""

from __future__ import annotations

import re

import libcst as cst
import pytest

from freezegen.check.engine import FIXABLE, UNSAFE_FIXABLE, check_source
from freezegen.check.registry import all_rules
from freezegen.rules import RuleOptions

RULES = all_rules()
CASES = [(r, "valid", i, ex) for r in RULES for i, ex in enumerate(r.valid)] + [
    (r, "invalid", i, ex) for r in RULES for i, ex in enumerate(r.invalid)
]
FIXES = [(r, i, ex) for r in RULES if r.fixable for i, ex in enumerate(r.invalid)]


def test_every_fixable_rule_fixes_one_of_its_examples():
    for rule in RULES:
        if rule.fixable:
            fixed = [check_source(ex, fix=True).fixed_source for ex in rule.invalid]
            assert any(fixed), f"{rule.code} is fixable but fixes none of its invalid examples"


def test_registry_discovers_rules_with_stable_shape():
    codes = [r.code for r in RULES]
    assert codes == sorted(codes) and len(set(codes)) == len(codes)
    assert {f"FG50{i}" for i in range(10)} <= set(codes)
    for rule in RULES:
        assert re.fullmatch(r"FG5\d\d", rule.code)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
        assert rule.summary.endswith(".")
        assert rule.valid and rule.invalid, f"{rule.code} needs valid and invalid examples"
        assert rule.__module__.rsplit(".", 1)[-1] == rule.name.replace("-", "_"), (
            "one rule per module, named after the rule"
        )
        assert rule.code == "FG500" or not rule.wanted(b"import torch\n"), "needs a prefilter"
        for example in rule.invalid if rule.code != "FG500" else ():
            assert rule.wanted(example.encode()), f"{rule.code}: prefilter drops an invalid example"


@pytest.mark.parametrize(
    ("rule", "kind", "index", "example"), CASES, ids=[f"{r.code}-{k}-{i}" for r, k, i, _ in CASES]
)
def test_rule_examples(rule, kind, index, example):
    for text in (example, example.replace("\n", "\r\n")):
        # FG500 is always on; selecting it alone would select no rule that parses the file
        options = RuleOptions() if rule.code == "FG500" else RuleOptions(select=(rule.code,))
        found = check_source(text, "train.py", options).diagnostics
        mine = [d for d in found if d.code == rule.code]
        if kind == "valid":
            assert not mine, f"{rule.code} fired on its valid example {index}: {mine}"
            continue
        assert mine, f"{rule.code} missed its invalid example {index}; got {found}"
        lines = example.splitlines()
        for d in mine:
            assert 1 <= d.line <= len(lines) and d.col >= 1, d
            assert d.path == "train.py" and d.severity is rule.severity
            assert d.message and d.fix, "located, actionable: a message and a help line"


@pytest.mark.parametrize(
    ("rule", "index", "example"), FIXES, ids=[f"{r.code}-{i}" for r, i, _ in FIXES]
)
def test_fixes_apply_and_are_fixed_points(rule, index, example):
    options = RuleOptions(select=(rule.code,))
    found = check_source(example, "train.py", options).diagnostics
    safe = [d for d in found if d.fix.endswith(FIXABLE)]
    unsafe = [d for d in found if d.fix.endswith(UNSAFE_FIXABLE)]
    if not safe + unsafe:
        pytest.skip("no fix offered for this example (its message says why)")
    if unsafe:  # --fix alone leaves exactly the unsafe ones
        kept = check_source(example, "train.py", options, fix=True).diagnostics
        assert [d for d in kept if d.code == rule.code] == unsafe
    fixed = check_source(example, "train.py", options, fix=True, unsafe_fixes=True)
    assert fixed.fixed_source is not None and fixed.fixed_source != example
    assert fixed.fixes == len(safe + unsafe)
    cst.parse_module(fixed.fixed_source)
    compile(fixed.fixed_source, "train.py", "exec")
    assert not [d for d in fixed.diagnostics if d.code == rule.code], fixed.fixed_source
    again = check_source(fixed.fixed_source, "train.py", options, fix=True, unsafe_fixes=True)
    assert again.fixed_source is None
