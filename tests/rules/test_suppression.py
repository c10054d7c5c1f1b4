"""One suppression parser for spec and script lines; codes match case-insensitively."""

from __future__ import annotations

import pytest
import yaml

from freezegen.check import check_source
from freezegen.lint import lint_text
from freezegen.rules import source_lines, suppresses

SPEC = """\
version: 1
model: {preset: gpt2, num_labels: 3}
freeze: {patterns: ["*.nope.*"]}
batch: {micro_batch_size: 2, seq_len: 128}
precision: bf16
hardware: {gpu: T4}
"""

SCRIPT = """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        model(batch).loss.backward()
        if (step + 1) % accum == 0:
            optimizer.step()
"""


@pytest.mark.parametrize(
    ("line", "code", "expected"),
    [
        ("x: 1  # freezegen: ignore", "FG102", True),
        ("x: 1  # freezegen: ignore[FG102]", "FG102", True),
        ("x: 1  # freezegen: ignore[fg102]", "FG102", True),
        ("x: 1  #freezegen:ignore[fg1, FG5]", "FG505", True),
        ("x: 1  # freezegen: ignore[FG1]", "FG102", True),
        ("x: 1  # freezegen: ignore[FG101]", "FG102", False),
        ("x: 1  # noqa", "FG102", False),
        ("x: 1", "FG102", False),
    ],
)
def test_suppresses(line, code, expected):
    assert suppresses(line, code) is expected


def codes(diagnostics):
    return sorted(d.code for d in diagnostics)


@pytest.mark.parametrize("written", ["FG102", "fg102", "Fg1"])
def test_lint_accepts_codes_in_any_case(written):
    text = SPEC.replace('["*.nope.*"]}', f'["*.nope.*"]}}  # freezegen: ignore[{written}]')
    assert codes(lint_text(text)) == ["FG101", "FG113"]


@pytest.mark.parametrize("written", ["FG505", "fg505", "fG50"])
def test_check_accepts_codes_in_any_case(written):
    text = SCRIPT.replace(
        "optimizer.zero_grad()", f"optimizer.zero_grad()  # freezegen: ignore[{written}]"
    )
    assert codes(check_source(text, "train.py").diagnostics) == ["FG503"]


@pytest.mark.parametrize(
    ("text", "syntax", "lines"),
    [
        ("a\nb\r\nc\rd", "python", ["a", "b", "c", "d"]),
        (
            "a\x0cb\x1c\x1d\x1e\x85\u2028\u2029c\n",
            "python",
            ["a\x0cb\x1c\x1d\x1e\x85\u2028\u2029c", ""],
        ),
        ("a\x85b\u2028c\u2029d\r\ne\x0cf", "yaml", ["a", "b", "c", "d", "e\x0cf"]),
        ("", "python", [""]),
    ],
)
def test_source_lines_break_where_the_parser_does(text, syntax, lines):
    assert source_lines(text, syntax) == lines


def test_yaml_lines_are_the_loaders():
    text = "a: 1\x85b: 2\u2028c: 3\u2029d: 4\r\ne: 5\n"
    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    lines = source_lines(text, "yaml")
    assert [lines[key.start_mark.line].split(":")[0] for key, _ in node.value] == list("abcde")


def test_check_suppression_is_on_the_line_python_counts():
    # a form feed before the finding: str.splitlines put the comment one line off
    feed = "import torch\nx = 1 \x0c\nstate = torch.load(p)  # freezegen: ignore[FG507]\n"
    assert check_source(feed, "a.py").diagnostics == []
    # U+2028 in a string before the finding: the comment after it silenced the next line
    separator = "import torch\ns = 'a\u2028'  # freezegen: ignore\nstate = torch.load(p)\n"
    assert [d.code for d in check_source(separator, "b.py").diagnostics] == ["FG507"]
