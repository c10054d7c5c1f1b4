"""One suppression parser for spec and script lines; codes match case-insensitively."""

from __future__ import annotations

import pytest

from freezegen.check import check_source
from freezegen.lint import lint_text
from freezegen.rules import suppresses

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
