"""Optimizers the file does not assign a constructor to the name it steps: one per model of a
list, or one handed to a trainer's ``__init__`` (freezegen/codemod/optimizer_origin.py). The
executed shapes are fixtures (per_model_optimizers, optimizer_handed_*); these pin what the
codemod says about them and where it stops."""

from __future__ import annotations

from freezegen.codemod import CodemodOptions, codemod_source

HANDED = """\
import torch
from torch import nn


class Trainer:
    def __init__(self, model, optimizer):
        self.model = model.to("cpu")
        self.optimizer = optimizer

    def run_batch(self, x, y):
        self.optimizer.zero_grad()
        loss = nn.functional.mse_loss(self.model(x), y)
        loss.backward()
        self.optimizer.step()
"""
PER_MODEL = """\
import torch
from lightning.fabric import Fabric
from torch import nn


def train(model, loader, optimizer, fabric):
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        fabric.backward(loss)
        optimizer.step()


def run(loader, k):
    fabric = Fabric()
    models = [nn.Linear(4, 1) for _ in range(k)]
    optimizers = [torch.optim.SGD(model.parameters(), lr=0.1) for model in models]
    for i in range(k):
        models[i], optimizers[i] = fabric.setup(models[i], optimizers[i])
    for fold in range(k):
        model, optimizer = models[fold], optimizers[fold]
        train(model, loader, optimizer, fabric)
"""
FREEZE = CodemodOptions(freeze=("0.*",))


def test_a_handed_optimizer_is_frozen_for_where_it_comes_in_and_said_so():
    result = codemod_source(HANDED, FREEZE, "trainer.py")
    assert result.applied == ["freeze"]
    (note,) = result.notes
    assert note.line == 8  # self.optimizer = optimizer: the freeze goes right above it
    assert "built by the caller of Trainer.__init__()" in note.text
    assert "grad is None" in note.text and "custom one" in note.text
    new = result.new_source or ""
    assert new.index("self.model.named_parameters()") < new.index("self.optimizer = optimizer")


def test_a_handed_optimizer_cannot_be_given_trainable_parameters_here():
    options = CodemodOptions(freeze=("0.*",), trainable_only_optimizer=True)
    result = codemod_source(HANDED, options, "trainer.py")
    assert result.not_applied == ["trainable-only optimizer"]
    (problem,) = result.problems
    assert problem.line == 8 and "hand it [p for p in model.parameters()" in problem.text


def test_explain_says_where_an_optimizer_comes_from():
    handed = codemod_source(HANDED, FREEZE, "trainer.py", explain=True).seen
    (entry,) = [s for s in handed if s.what == "optimizer"]
    assert entry.line == 8
    assert entry.text == (
        "`self.optimizer` handed to Trainer.__init__() by its caller, trains `self.model`"
    )
    per_model = codemod_source(PER_MODEL, FREEZE, "kfold.py", explain=True).seen
    (entry,) = [s for s in per_model if s.what == "optimizer"]
    assert entry.line == 17 and "one per model of `models`" in entry.text


def test_one_optimizer_per_model_freezes_every_model_of_the_list():
    result = codemod_source(PER_MODEL, FREEZE, "kfold.py")
    assert result.applied == ["freeze"]
    assert "for each_model in models:\n        frozen = 0\n" in (result.new_source or "")


def test_one_optimizer_per_model_refuses_what_sets_up_one_model():
    options = CodemodOptions(freeze=("0.*",), activation_checkpointing="blocks")
    result = codemod_source(PER_MODEL, options, "kfold.py")
    assert result.not_applied == ["activation checkpointing"]
    (problem,) = result.problems
    assert problem.line == 17 and "one optimizer is built per model of `models`" in problem.text


def test_fabric_precision_needs_every_model_of_the_list_set_up():
    partly = PER_MODEL.replace("for i in range(k):", "for i in range(k - 1):")
    result = codemod_source(partly, CodemodOptions(precision="bf16"), "kfold.py")
    assert result.not_applied == ["precision"]
    (problem,) = result.problems
    assert problem.line == 17 and "not every model of `models` is set up by Fabric" in problem.text
    whole = codemod_source(PER_MODEL, CodemodOptions(precision="bf16"), "kfold.py")
    assert whole.applied == ["precision"]
    assert 'Fabric(precision="bf16-mixed")' in (whole.new_source or "")


def test_a_function_handed_model_and_optimizer_stays_refused():
    """Its caller may have wrapped the model already: a freeze in here would come too late."""
    function = """\
from torch import nn


def train(model, loader, optimizer):
    for x, y in loader:
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
"""
    (problem,) = codemod_source(function, FREEZE, "train.py").problems
    assert problem.line == 8
    assert "a parameter of train(), built by its caller" in problem.text


def test_a_model_of_the_list_replaced_by_another_is_no_longer_the_one_frozen():
    """models[i] = Net() after the optimizers: the optimizer trains the old model, the step
    runs the new one; the freeze cannot tell, so the old refusal stands."""
    replaced = PER_MODEL.replace(
        "models[i], optimizers[i] = fabric.setup(models[i], optimizers[i])",
        "models[i] = nn.Linear(4, 1)",
    )
    (problem,) = codemod_source(replaced, FREEZE, "kfold.py").problems
    assert problem.line == 21 and "not from an optimizer constructor" in problem.text


def test_an_element_handed_on_one_path_only_is_not_followed():
    """One caller hands the training function an element of the list, another something
    else: which optimizer the step runs is a question of paths, so nothing is resolved."""
    other = PER_MODEL + "    train(model, loader, torch.optim.SGD(model.parameters()), fabric)\n"
    result = codemod_source(other, FREEZE, "kfold.py")
    assert result.applied == [] and "the model it trains is unknown" in result.problems[0].text
