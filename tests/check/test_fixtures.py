"""``check`` on realistic scripts.

tests/fixtures/check/*.in.py against their *.out.py: pairs are collected automatically;
``pytest --update-golden`` rewrites the *.out.py files from the current behaviour (review the
diff). Every output parses, compiles, is a fixed point of ``--fix``, and keeps the input's
comments and blank lines.

tests/fixtures/check/findings/*.py: every finding, and nothing else, sits on a line that ends
in ``# expect: CODE``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from freezegen.check import check_source

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "check"
INPUTS = sorted(FIXTURES.glob("*.in.py"))
EXPECTING = sorted((FIXTURES / "findings").glob("*.py"))
EXPECT = re.compile(r"# expect: (FG\d+)$")


def test_fixtures_exist():
    assert len(INPUTS) >= 3 and EXPECTING


@pytest.mark.parametrize("source", INPUTS, ids=[p.name.removesuffix(".in.py") for p in INPUTS])
def test_fix_matches_golden(source: Path, update_golden: bool):
    text = source.read_text(encoding="utf-8")
    result = check_source(text, source.name, fix=True)
    fixed = result.fixed_source if result.fixed_source is not None else text
    golden = source.with_name(source.name.replace(".in.py", ".out.py"))
    if update_golden:
        golden.write_text(fixed, encoding="utf-8")
    assert golden.exists(), f"missing {golden.name}: run pytest --update-golden"
    assert fixed == golden.read_text(encoding="utf-8")
    assert result.fixes > 0, "a fixture should exercise at least one fix"
    compile(fixed, golden.name, "exec")
    again = check_source(fixed, golden.name, fix=True)
    assert again.fixed_source is None, "fixing twice must change nothing"
    assert _comments(text) == _comments(fixed)
    assert text.count("\n\n") == fixed.count("\n\n")


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("source", EXPECTING, ids=[p.stem for p in EXPECTING])
def test_findings_are_where_the_fixture_expects_them(source: Path):
    text = source.read_text(encoding="utf-8")
    expected = [
        (number, match[1])
        for number, line in enumerate(text.splitlines(), 1)
        if (match := EXPECT.search(line))
    ]
    found = [(d.line, d.code) for d in check_source(text, source.name).diagnostics]
    assert found == expected
