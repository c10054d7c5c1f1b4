"""Accumulation over a ``while`` loop: the counter of passes the codemod adds, the shapes it
refuses, and what it tells the user (the executed fixture is while_trainer.in.py)."""

from __future__ import annotations

import pytest

from freezegen.codemod import CodemodOptions, codemod_source

ACCUM = CodemodOptions(grad_accum_steps=4)

STREAM = """\
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
iter_num = 0
{loop}
    loss = model({batch})
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    iter_num += 1
    if iter_num >= max_iters:
        break
"""


def _rewrite(source: str, options: CodemodOptions = ACCUM):
    result = codemod_source(source, options, "train.py")
    assert result.changed, result.problems
    again = codemod_source(result.new_source or "", options, "train.py")
    assert not again.changed and again.problems == [], "the rewrite is a fixed point"
    return result.new_source or "", [str(n) for n in result.notes]


def test_each_pass_is_counted_first_and_the_update_guarded_to_every_nth():
    new, notes = _rewrite(STREAM.format(loop="while True:\n    x = next(it)", batch="x"))
    assert (
        "micro_step = 0\n"
        "while True:\n"
        "    micro_step += 1\n"
        "    x = next(it)\n"
        "    loss = model(x)\n"
        "    if micro_step % 4 == 1:\n"
        "        optimizer.zero_grad()\n"
        "    (loss / 4).backward()\n"
        "    if micro_step % 4 == 0:\n"
        "        optimizer.step()\n"
        "    iter_num += 1\n"
    ) in new
    # the partial window at the loop; the pass counter its exit test reads, at that test
    assert notes[0].startswith("train.py:5:1: this `while` loop has no length to read")
    assert notes[1].startswith(
        "train.py:12:8: iter_num counts the passes of the `while` loop that this test stops"
    )
    assert "1/4 as many optimizer updates" in notes[1] and "multiply its limit by 4" in notes[1]


@pytest.mark.parametrize(
    ("loop", "batch"),
    [
        ("while (x := next(it, None)) is not None:", "x"),  # drawn by the loop's test
        ("while True:", "get_batch('train')"),
        ("while True:\n    with torch.no_grad():\n        x = sample(8)", "x"),
        ("while True:\n    x = torch.randint(0, 50, (8, 16))", "x"),
    ],
)
def test_a_batch_drawn_on_every_pass_makes_a_micro_step(loop: str, batch: str):
    new, _ = _rewrite(STREAM.format(loop=loop, batch=batch))
    assert "if micro_step % 4 == 0:" in new


@pytest.mark.parametrize(
    "loop",
    [
        "while True:\n    if iter_num % 10 == 0:\n        x = next(it)",  # only on some passes
        "while True:\n    for _ in range(2):\n        x = next(it)",
        "while True:\n    noise = torch.randn(8, 4)",  # a draw the loss does not read
    ],
)
def test_a_batch_not_drawn_on_every_pass_is_refused(loop: str):
    result = codemod_source(STREAM.format(loop=loop, batch="x"), ACCUM, "train.py")
    (problem,) = [str(p) for p in result.problems]
    assert problem.startswith("train.py:5:1: cannot add accumulation: the loop `while True:`")
    assert "draws no new batch in a statement that every pass runs" in problem


def test_a_continue_below_the_step_keeps_the_windows_whole():
    loop = "while True:\n    x = next(it)"
    source = STREAM.format(loop=loop, batch="x") + "    if iter_num % 10:\n        continue\n"
    new, _ = _rewrite(source)
    assert "if micro_step % 4 == 0:" in new


def test_a_taken_name_is_not_reused_for_the_counter():
    source = "micro_step = 3\n" + STREAM.format(loop="while True:\n    x = next(it)", batch="x")
    new, _ = _rewrite(source)
    assert "micro_batch = 0\n" in new and "if micro_batch % 4 == 0:" in new


def test_the_script_s_own_window_over_a_while_loop_is_kept():
    source = (
        STREAM.format(loop="while True:\n    x = next(it)", batch="x")
        .replace("    optimizer.step()\n", "    if iter_num % 4 == 0:\n        optimizer.step()\n")
        .replace("loss.backward()", "(loss / 4).backward()")
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert not result.changed and result.problems == []


ACCELERATE = """\
import torch
from accelerate import Accelerator

accelerator = Accelerator()
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model, optimizer = accelerator.prepare(model, optimizer)
step = 0
while step < 100:
    x = {batch}
    loss = model(x).sum()
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
    step += 1
"""


def test_accelerate_counts_a_while_loop_s_passes_itself():
    """accumulate() counts its own calls, so a `while` loop needs no counter of ours; the user
    is told the same as for a counter of ours."""
    new, notes = _rewrite(ACCELERATE.format(batch="next(it)"))
    assert "Accelerator(gradient_accumulation_steps=4)" in new
    assert "while step < 100:\n    with accelerator.accumulate(model):\n" in new
    assert notes[0].startswith("train.py:9:1: this `while` loop has no length to read")
    assert notes[1].startswith("train.py:9:7: step counts the passes")


def test_accelerate_over_a_while_loop_that_reuses_its_batch_is_refused():
    result = codemod_source(ACCELERATE.format(batch="features"), ACCUM, "train.py")
    (problem,) = [str(p) for p in result.problems]
    assert problem.startswith("train.py:9:1: cannot add accumulation: the loop `while step < 100:`")


ZEROED_AFTER = """\
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


{header}
    while True:
        x = next(it)
        loss = model(x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if done():
            break
{calls}
"""


@pytest.mark.parametrize(
    ("header", "calls", "why"),
    [
        ("def train():", "train()\ntrain()", "in train(), called 2 times"),
        ("def train():", "for _ in range(3):\n    train()", "in train(), called at line 16"),
        ("def train():", "", "in train(), which this file does not call"),
        ("class Trainer:\n  def run(self):", "", "in the method run(), which may be called"),
    ],
)
def test_a_loop_that_may_run_again_must_zero_its_gradients_first(header, calls, why):
    """What a partial window left would be added to the next run's first window."""
    result = codemod_source(ZEROED_AFTER.format(header=header, calls=calls), ACCUM, "train.py")
    (problem,) = [str(p) for p in result.problems]
    assert f"cannot add accumulation: this `while` loop may run again ({why}" in problem
    line = int(problem.split(":")[1])
    assert "zero_grad()" in ZEROED_AFTER.format(header=header, calls=calls).splitlines()[line - 1]


def test_a_loop_that_runs_once_may_zero_its_gradients_after_the_update():
    source = ZEROED_AFTER.format(header="def train():", calls="train()")
    new, _ = _rewrite(source)
    assert "        if micro_step % 4 == 0:\n            optimizer.step()\n" in new


def test_a_loop_that_may_run_again_and_zeroes_first_starts_each_run_clean():
    source = ZEROED_AFTER.format(header="def train():", calls="train()\ntrain()").replace(
        "        loss.backward()\n", "        optimizer.zero_grad()\n        loss.backward()\n"
    )
    source = source.replace(
        "        optimizer.step()\n        optimizer.zero_grad()\n", "        optimizer.step()\n"
    )
    new, _ = _rewrite(source)
    assert "        if micro_step % 4 == 1:\n            optimizer.zero_grad()\n" in new
