"""A one-off reference pass before the optimizer is built, told apart from the training
backward by order (freezegen/codemod/reference_pass.py)."""

from __future__ import annotations

import pytest

from freezegen.codemod import CodemodOptions, codemod_source

PRECISION = CodemodOptions(precision="bf16")
SOURCE = """\
import torch
from torch import nn

model = nn.Linear(4, 1)
reference = model(torch.ones(2, 4)).sum()
reference.backward()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
{header}
{zero}
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
"""
ZERO = "    optimizer.zero_grad()"
EVERY_FOURTH = "    if step % 4 == 0:\n        optimizer.zero_grad()"


@pytest.mark.parametrize(
    ("header", "zero", "set_apart"),
    [
        # zeroed before each backward call, the first one included
        ("for x in batches:", ZERO, True),
        ("for step, x in enumerate(batches):", EVERY_FOURTH, True),
        ("for step in range(8):\n    x = batches[step]", EVERY_FOURTH, True),
        # counting from 1, the first pass does not zero
        ("for step, x in enumerate(batches, 1):", EVERY_FOURTH, False),
        ("for step in range(1, 9):\n    x = batches[step]", EVERY_FOURTH, False),
        # zeroed on some path only, or after the backward
        ("for x in batches:", "    if x is None:\n        optimizer.zero_grad()", False),
        ("for x in batches:", "    pass", False),
    ],
)
def test_the_training_loop_must_zero_before_its_first_backward(
    header: str, zero: str, set_apart: bool
):
    source = SOURCE.format(header=header, zero=zero)
    result = codemod_source(source, PRECISION, "train.py")
    problems = [str(p) for p in result.problems]
    if set_apart:
        assert problems == [] and result.new_source is not None
        lines = result.new_source.splitlines()
        # autocast on the training forward only: the reference pass is left as it was
        assert lines[4:6] == source.splitlines()[4:6]
        assert "autocast" in result.new_source
    else:
        (problem,) = problems
        assert problem.startswith("train.py:6:1: cannot add precision: this backward call runs")
        assert "has no zero_grad() above it" in problem
