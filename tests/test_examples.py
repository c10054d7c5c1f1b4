"""Every example and fixture spec, found recursively: linted, schema-checked, golden-compared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freezegen.lint import LintOptions, lint_paths
from freezegen.lint.engine import lint_result
from freezegen.spec import load

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").rglob("*freezegen.yaml"))
FIXTURES = REPO / "tests" / "fixtures" / "lint"
POSITIVE = sorted((FIXTURES / "positive").rglob("*.yaml"))
NEGATIVE = sorted((FIXTURES / "negative").rglob("*.yaml"))
MODELINE = "# yaml-language-server: $schema="


def test_examples_exist():
    names = {p.relative_to(REPO / "examples").as_posix() for p in EXAMPLES}
    assert {
        "tiny/freezegen.yaml",
        "bert-base-freeze-6/freezegen.yaml",
        "llama-3-8b-bf16-checkpointing/freezegen.yaml",
    } <= names
    assert {f"gpt2-medium-freezing/freeze-{n}.freezegen.yaml" for n in (0, 6, 12)} <= names


@pytest.mark.parametrize("path", EXAMPLES + POSITIVE, ids=lambda p: p.relative_to(REPO).as_posix())
def test_clean_specs_lint_clean_and_validate_against_the_schema(path):
    report = lint_paths([path])
    assert report.diagnostics == [], report.diagnostics
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(MODELINE), "start every spec with the schema modeline for editors"
    schema_file = (path.parent / first.removeprefix(MODELINE)).resolve()
    assert schema_file == REPO / "schemas" / "freezegen.schema.json"
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(load(path).document.data, json.loads(schema_file.read_text()))


@pytest.mark.parametrize("path", NEGATIVE, ids=lambda p: p.name)
def test_negative_fixtures_match_expected(path, update_golden):
    """Expected findings live next to each fixture; refresh with pytest --update-golden."""
    found = lint_result(load(path), LintOptions())
    rel = path.relative_to(REPO).as_posix()
    text = "".join(
        f"{d.line}:{d.col}: {d.code} {d.severity.value} {d.message}"
        + (f" (help: {d.fix})" if d.fix else "")
        + "\n"
        for d in found
    )
    text = text.replace(str(path), rel)
    expected = path.with_suffix(".expected")
    if update_golden:
        expected.write_text(text, encoding="utf-8")
    assert found, f"{rel} is a negative fixture but lints clean"
    assert expected.exists(), f"missing {expected.name}; run pytest --update-golden"
    assert text == expected.read_text(encoding="utf-8")
