"""One AMP switch (``if use_amp: scaler.scale(loss).backward() ... else: loss.backward()``) is
one backward mechanism (Script.amp_switch); its precision is kept when the autocast reads the
same switch (existing.keep_amp_switch), and accumulation edits both branches
(step_function). The executed shapes are the amp_switch_* fixtures; these pin the edges."""

from __future__ import annotations

from freezegen.codemod import CodemodOptions, codemod_source

TRAINER = """\
import torch
from torch import nn


class Trainer:
    def __init__(self, model, use_amp):
        self.model = model
        self.use_amp = use_amp
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        self.scaler = torch.amp.GradScaler("cpu")

    def run_batch(self, x, y, train=True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_amp):
            loss = nn.functional.mse_loss(self.model(x), y)
        if train:
            self.optimizer.zero_grad()
            if self.use_amp:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()

    def fit(self, loader):
        for x, y in loader:
            self.run_batch(x, y)
"""
PRECISION = CodemodOptions(precision="bf16")
ACCUMULATION = CodemodOptions(grad_accum_steps=4)


def test_the_switch_is_one_mechanism_with_its_precision_kept():
    result = codemod_source(TRAINER, PRECISION, "trainer.py")
    assert result.problems == [] and result.kept == ["precision"]
    (action,) = result.actions
    assert action.line == 13 and "set self.use_amp to True yourself" in action.text


def test_an_autocast_on_another_switch_is_not_kept():
    other = TRAINER.replace("enabled=self.use_amp", "enabled=self.other_flag")
    (problem,) = codemod_source(other, PRECISION, "trainer.py").problems
    assert problem.line == 13 and "switched by enabled=self.other_flag" in problem.text


def test_two_backward_calls_of_different_losses_are_no_switch():
    other = TRAINER.replace("loss.backward()", "(2 * loss).backward()")
    (problem,) = codemod_source(other, PRECISION, "trainer.py").problems
    assert "2 backward calls found (lines 18, 22)" in problem.text


def test_both_branches_get_the_window():
    new = codemod_source(TRAINER, ACCUMULATION, "trainer.py").new_source or ""
    assert new.count("self._micro_step += 1") == 2
    assert new.count("if self._micro_step % 4 == 0 or self._micro_step == self._micro_steps:") == 2
    assert "if self._micro_step % 4 == 0:\n                self.optimizer.zero_grad()" in new


def test_a_zero_grad_outside_the_guarded_block_is_refused():
    outside = TRAINER.replace(
        "        if train:\n            self.optimizer.zero_grad()\n",
        "        self.optimizer.zero_grad()\n        if train:\n",
    )
    (problem,) = codemod_source(outside, ACCUMULATION, "trainer.py").problems
    assert problem.line == 15 and "outside the block that holds the backward call" in problem.text
