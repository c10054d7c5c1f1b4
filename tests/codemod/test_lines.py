"""Training calls sharing a line are split before the transforms (codemod/lines.py); every
message still names the file's own lines and columns."""

from __future__ import annotations

import libcst as cst

from freezegen.codemod import CodemodOptions, codemod_source
from freezegen.codemod.lines import split_training_lines

ONE_LINE = """\
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step, (x, y) in enumerate(loader):
    model.train(); optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward(); optimizer.step()  # one line
    print(undefined_window)
"""


def test_each_training_call_gets_a_line_and_the_rest_stays():
    module, lines = split_training_lines(cst.parse_module(ONE_LINE))
    assert "    model.train()\n    optimizer.zero_grad()\n" in module.code
    assert "    loss.backward()\n    optimizer.step()  # one line\n" in module.code
    assert lines.where(6, 4) == (6, 4) and lines.where(7, 4) == (6, 19)
    assert lines.where(9, 4) == (8, 4) and lines.where(10, 4) == (8, 21)
    assert lines.where(11, 4) == (9, 4)  # below both splits: two lines up
    untouched = "x = 1; y = 2\n"
    assert split_training_lines(cst.parse_module(untouched))[0].code == untouched


def test_the_rewrite_splits_the_lines_it_edits_and_runs_its_windows():
    result = codemod_source(ONE_LINE, CodemodOptions(grad_accum_steps=4), "train.py")
    assert result.problems == []
    new = result.new_source or ""
    assert "    model.train()\n    if step % 4 == 0:\n        optimizer.zero_grad()\n" in new
    assert "    if (step + 1) % 4 == 0 or step + 1 == len(loader):\n        optimizer.step()" in new
    again = codemod_source(new, CodemodOptions(grad_accum_steps=4), "train.py")
    assert not again.changed


def test_messages_name_the_file_s_lines_after_a_split():
    source = ONE_LINE.replace("    print(undefined_window)\n", "    scheduler.step(); q = 1\n")
    result = codemod_source(source, CodemodOptions(grad_accum_steps=4), "train.py")
    notes = [str(n) for n in result.notes]
    assert any(n.startswith("train.py:9:5: scheduler now steps once per 4") for n in notes), notes


def test_a_split_alone_is_no_rewrite():
    """When no transform acts, the file is not rewritten just to split its lines."""
    result = codemod_source(ONE_LINE, CodemodOptions(precision=None), "train.py")
    assert not result.changed and result.new_source is None


INLINE_LOSS = """\
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    torch.nn.functional.mse_loss(model(x), y).backward()  # inline
    scaler.scale(loss).backward()
    optimizer.step()
    print(undefined_window)
"""


def test_a_loss_computed_in_the_backward_statement_gets_a_name_and_a_line():
    module, lines = split_training_lines(cst.parse_module(INLINE_LOSS))
    assert (
        "    loss_1 = torch.nn.functional.mse_loss(model(x), y)\n"  # `loss` is spelled below
        "    loss_1.backward()  # inline\n"
        "    scaler.scale(loss).backward()\n"  # a scaled loss is already computed: left alone
    ) in module.code
    assert lines.where(7, 4) == (7, 4) and lines.where(8, 4) == (7, 4)
    assert lines.where(11, 4) == (10, 4)
