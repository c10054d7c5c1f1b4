"""Each output format carries every finding, located, in the shape its consumers parse."""

from __future__ import annotations

import json

import pytest

from freezegen.diagnostics import Diagnostic, Severity
from freezegen.report import render

DIAGS = [
    Diagnostic(
        "FG002",
        "unknown key 'micro_batchsize' in batch",
        "specs/a, b.freezegen.yaml",
        10,
        3,
        fix="did you mean 'micro_batch_size'?",
    ),
    Diagnostic(
        "FG102",
        "pattern '*.x' matches no parameter\nsecond line: 100%",
        "b.yaml",
        4,
        21,
        severity=Severity.WARNING,
    ),
]


def test_text_is_ruff_like_with_help_and_summary():
    out = render("text", DIAGS, files=2)
    lines = out.splitlines()
    assert (
        lines[0] == "specs/a, b.freezegen.yaml:10:3: FG002 unknown key 'micro_batchsize' in batch"
    )
    assert lines[1] == "  help: did you mean 'micro_batch_size'?"
    assert lines[2].startswith("b.yaml:4:21: FG102 warning: pattern")
    assert lines[-1] == "Found 1 error and 1 warning in 2 files."
    assert "\x1b[" not in out


def test_text_names_a_whole_file_finding_without_a_position():
    # line 0 means the whole file (unreadable, unwritable): "path:0:0:" would point nowhere
    whole = Diagnostic("FG500", "cannot read: it is a device, not a regular file", "z.py", 0, 0)
    assert render("text", [whole], files=1).splitlines()[0] == (
        "z.py: FG500 cannot read: it is a device, not a regular file"
    )


def test_text_summary_names_only_what_was_found():
    assert render("text", DIAGS[1:], files=1).splitlines()[-1] == "Found 1 warning in 1 file."
    assert render("text", DIAGS[:1], files=1).splitlines()[-1] == "Found 1 error in 1 file."


def test_text_colour_only_when_asked():
    assert "\x1b[" in render("text", DIAGS, files=1, color=True)
    assert render("text", [], files=3) == "All checks passed (3 files).\n"


def test_json_round_trips():
    data = json.loads(render("json", DIAGS, files=2))
    assert data["summary"] == {"files": 2, "error": 1, "warning": 1}
    first = data["diagnostics"][0]
    assert first == {
        "code": "FG002",
        "severity": "error",
        "message": DIAGS[0].message,
        "path": DIAGS[0].path,
        "line": 10,
        "column": 3,
        "end_line": None,
        "end_column": None,
        "fix": "did you mean 'micro_batch_size'?",
    }


def test_github_annotations_escape_properties_and_data():
    lines = render("github", DIAGS).splitlines()
    assert lines[0] == (
        "::error file=specs/a%2C b.freezegen.yaml,line=10,col=3,"
        "title=freezegen FG002::unknown key 'micro_batchsize' in batch "
        "(did you mean 'micro_batch_size'?)"
    )
    assert lines[1].startswith("::warning file=b.yaml,line=4,col=21,title=freezegen FG102::")
    # a line break in a message is shown as an escape, as in the text format (not %0A)
    assert "\\nsecond line: 100%25" in lines[1]
    assert len(lines) == 2


# A key can hold anything a quoted YAML string can: a forged summary line, terminal escapes,
# a bidi override, separators. None of it may reach the output as it is.
HOSTILE = "x\nAll checks passed (1 file).\r\x1b[2J\u202e\u2028\x85\t\ufeff"
ESCAPED = "x\\nAll checks passed (1 file).\\r\\x1b[2J\\u202e\\u2028\\x85\\t\\ufeff"


@pytest.mark.parametrize("fmt", ["text", "github"])
def test_control_characters_from_a_spec_are_escaped(fmt):
    from freezegen.lint import lint_text

    key = HOSTILE.encode("unicode_escape").decode()  # as a double-quoted YAML key writes it
    spec = "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 1, seq_len: 8}\n"
    found = lint_text(f'{spec}"{key}": 1\n', "a\x1b[31m.freezegen.yaml")
    assert [d.code for d in found] == ["FG002"]
    out = render(fmt, found, files=1)
    assert all(ch.isprintable() or ch == "\n" for ch in out), out
    lines = out.splitlines()
    assert len(lines) == (3 if fmt == "text" else 1), out  # finding, help (, summary)
    assert lines[-1] != "All checks passed (1 file)."
    assert ESCAPED in out and "a\\x1b[31m.freezegen.yaml" in out


def test_sarif_validates_against_the_sarif_2_1_0_model():
    model = pytest.importorskip("pydantic_sarif.model")
    text = render("sarif", DIAGS)
    log = model.StaticAnalysisResultsFormatSarifVersion210JsonSchema.model_validate_json(text)
    assert log.version.value == "2.1.0"
    run = log.runs[0]
    assert run.tool.driver.name == "freezegen"
    assert [r.id for r in run.tool.driver.rules] == ["FG002", "FG102"]
    results = run.results
    assert [r.ruleId for r in results] == ["FG002", "FG102"]
    assert [r.level.value for r in results] == ["error", "warning"]
    region = results[0].locations[0].physicalLocation.region
    assert (region.startLine, region.startColumn) == (10, 3)
    raw = json.loads(text)
    assert raw["runs"][0]["tool"]["driver"]["rules"][0]["name"] == "unknown-key"
    assert run.columnKind.value == "unicodeCodePoints"  # columns count code points, not UTF-16


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("specs/a, b.freezegen.yaml", "specs/a%2C%20b.freezegen.yaml"),
        ("dir/100%#1?.py", "dir/100%25%231%3F.py"),
        ("c:x.py", "c%3Ax.py"),
        ("données/é.py", "donn%C3%A9es/%C3%A9.py"),
        ("/tmp/a b/ü.py", "file:///tmp/a%20b/%C3%BC.py"),
    ],
)
def test_sarif_uris_are_percent_encoded_references(path, uri):
    raw = json.loads(render("sarif", [Diagnostic("FG002", "m", path, 1, 1)]))
    location = raw["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == uri


def test_sarif_with_no_findings_is_still_a_valid_log():
    model = pytest.importorskip("pydantic_sarif.model")
    log = model.StaticAnalysisResultsFormatSarifVersion210JsonSchema.model_validate_json(
        render("sarif", [])
    )
    assert log.runs[0].results == []
