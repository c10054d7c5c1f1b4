"""Lightning Fabric recognised by what built the object, not by the name ``fabric``."""

from __future__ import annotations

import libcst as cst
import pytest

from freezegen.codemod import CodemodOptions, codemod_source
from freezegen.codemod.script import Script

STEP = "    loss = model(x)\n    {fabric}.backward(loss)\n    optimizer.step()\n"


def _style(source: str) -> str:
    return Script(cst.parse_module(source)).backward.style


@pytest.mark.parametrize(
    "source",
    [
        "from lightning.fabric import Fabric\nfabric = Fabric()\nfor x in data:\n"
        + STEP.format(fabric="fabric"),
        "import lightning as L\nf = L.Fabric(devices=2)\nfor x in data:\n"
        + STEP.format(fabric="f"),
        "import lightning_fabric\nfabric = lightning_fabric.Fabric()\nfor x in data:\n"
        + STEP.format(fabric="fabric"),
        # a parameter annotated with the class (a string annotation too)
        "from lightning.fabric import Fabric\ndef train(fabric: Fabric):\n  for x in data:\n"
        + STEP.format(fabric="fabric").replace("    ", "    "),
        "import lightning as L\ndef train(fabric: 'L.Fabric'):\n  for x in data:\n"
        + STEP.format(fabric="fabric"),
        # handed down by every caller, or by fabric.launch(main), which calls main(fabric)
        "import lightning as L\ndef train(fabric, model):\n  for x in data:\n"
        + STEP.format(fabric="fabric")
        + "def main():\n    fabric = L.Fabric()\n    train(fabric, model=None)\n",
        "import lightning as L\ndef main(runner):\n  for x in data:\n"
        + STEP.format(fabric="runner")
        + "fabric = L.Fabric()\nfabric.launch(main)\n",
        # built in __init__, used in another method of the same class
        "import lightning as L\nclass T:\n  def __init__(self):\n    self.fabric = L.Fabric()\n"
        "  def fit(self):\n   for x in data:\n" + STEP.format(fabric="self.fabric"),
    ],
)
def test_fabric_is_recognised_by_what_built_it(source: str):
    assert _style(source) == "fabric"


@pytest.mark.parametrize(
    "source",
    [
        # named fabric, but built by something else
        "fabric = make_runner()\nfor x in data:\n" + STEP.format(fabric="fabric"),
        # a parameter named fabric that one caller hands something else
        "import lightning as L\ndef train(fabric):\n  for x in data:\n"
        + STEP.format(fabric="fabric")
        + "train(L.Fabric())\ntrain(object())\n",
        # a parameter nobody in the file passes
        "def train(fabric):\n  for x in data:\n" + STEP.format(fabric="fabric"),
        # another library's Fabric
        "from looms import Fabric\nfabric = Fabric()\nfor x in data:\n"
        + STEP.format(fabric="fabric"),
    ],
)
def test_a_name_alone_is_not_fabric(source: str):
    assert _style(source) == "accelerate"


def test_a_precision_setting_from_outside_the_file_is_left_to_the_user():
    source = (
        "import lightning as L\nimport torch\n"
        "def main(precision, plugins=None):\n"
        "    fabric = L.Fabric(precision=precision)\n"
        "    model = torch.nn.Linear(2, 1)\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    model, optimizer = fabric.setup(model, optimizer)\n"
        "    for x in data:\n" + STEP.format(fabric="fabric").replace("    ", "        ")
    )
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.problems == [] and not result.changed
    assert [str(a) for a in result.actions] == [
        "train.py:4:23: keeping the script's own precision: Fabric(...) takes its precision "
        'from `precision`, a setting of yours; set precision to "bf16-mixed" yourself (the '
        "codemod cannot: `precision` is a parameter of main() (line 3): its caller decides its "
        "value)"
    ]
    plugins = source.replace("L.Fabric(precision=precision)", "L.Fabric(plugins=plugins)")
    (action,) = [a.text for a in codemod_source(plugins, CodemodOptions(precision="bf16")).actions]
    assert action.endswith(
        'a setting of yours; set precision to "bf16-mixed" and no precision plugin in it yourself'
    )


def test_the_precision_setting_does_not_hide_an_unknown_model():
    source = (
        "import lightning as L\n"
        "def main(precision):\n"
        "    fabric = L.Fabric(precision=precision)\n"
        "    for x in data:\n" + STEP.format(fabric="fabric").replace("    ", "        ")
    )
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    texts = [p.text for p in result.problems]
    assert texts == [
        "cannot add precision: `optimizer` is stepped here but is not built in this file, so "
        "the model it trains is unknown"
    ]
    assert result.actions == []


@pytest.mark.parametrize(("existing", "precision"), [('"bf16"', "bf16"), ("16", "fp16")])
def test_a_precision_that_already_means_it_is_kept(existing: str, precision: str):
    source = (
        "import torch\nfrom lightning.fabric import Fabric\n"
        f"fabric = Fabric(precision={existing})\n"
        "model = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "model, optimizer = fabric.setup(model, optimizer)\n"
        "for x in data:\n" + STEP.format(fabric="fabric")
    )
    result = codemod_source(source, CodemodOptions(precision=precision), "train.py")
    assert result.problems == [] and not result.changed


def test_precision_needs_the_model_set_up_by_fabric():
    source = (
        "import torch\nfrom lightning.fabric import Fabric\nfabric = Fabric()\n"
        "model = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in data:\n" + STEP.format(fabric="fabric")
    )
    (problem,) = codemod_source(source, CodemodOptions(precision="bf16"), "train.py").problems
    assert problem.line == 5 and "`model` is not set up by Fabric" in problem.text


def test_an_unknown_backward_object_is_named_with_both_libraries():
    source = (
        "import torch\nrunner = make_runner()\nmodel = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in data:\n" + STEP.format(fabric="runner")
    )
    options = CodemodOptions(precision="bf16", grad_accum_steps=2)
    # precision and accumulation refuse for the same reason at the same call: said once
    (problem,) = codemod_source(source, options, "train.py").problems
    assert problem.line == 7
    assert "backpropagates through `runner`, which this file builds with neither" in problem.text
    assert "Accelerator(...) nor Lightning's Fabric(...)" in problem.text


def _fabric_script(
    step: str, setup: str = "model, optimizer = fabric.setup(model, optimizer)"
) -> str:
    return (
        "import torch\nfrom lightning.fabric import Fabric\nfabric = Fabric()\n"
        "model = torch.nn.Linear(2, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        f"{setup}\n"
        "for step, x in enumerate(loader):\n" + step
    )


def test_a_torch_autocast_of_its_own_is_refused_but_fabrics_is_welcome():
    own = "    with torch.autocast('cuda', dtype=torch.bfloat16):\n        loss = model(x)\n"
    own += "    fabric.backward(loss)\n    optimizer.step()\n"
    (problem,) = codemod_source(_fabric_script(own), CodemodOptions(precision="bf16")).problems
    assert problem.line == 8 and "its own autocast" in problem.text
    welcome = own.replace("torch.autocast('cuda', dtype=torch.bfloat16)", "fabric.autocast()")
    result = codemod_source(_fabric_script(welcome), CodemodOptions(precision="bf16"))
    assert result.problems == [] and 'Fabric(precision="bf16-mixed")' in result.new_source


def test_a_no_backward_sync_of_its_own_with_another_window_is_refused():
    step = (
        "    accumulating = (step + 1) % 8 != 0\n"
        "    with fabric.no_backward_sync(model, enabled=accumulating):\n"
        "        loss = model(x)\n        fabric.backward(loss)\n"
        "    if not accumulating:\n        optimizer.step()\n"
    )
    (problem,) = codemod_source(_fabric_script(step), CodemodOptions(grad_accum_steps=4)).problems
    assert problem.line == 9 and "with Fabric's no_backward_sync" in problem.text
    same = codemod_source(_fabric_script(step), CodemodOptions(grad_accum_steps=8))
    assert same.problems == [] and not same.changed


def test_fp16_needs_the_optimizer_set_up_by_fabric():
    step = "    loss = model(x)\n    fabric.backward(loss)\n    optimizer.step()\n"
    source = _fabric_script(step, setup="model = fabric.setup_module(model)")
    (problem,) = codemod_source(source, CodemodOptions(precision="fp16")).problems
    assert problem.line == 5 and "the optimizer must be set up by Fabric" in problem.text
    set_up = source.replace(
        "model = fabric.setup_module(model)",
        "model = fabric.setup_module(model)\noptimizer = fabric.setup_optimizers(optimizer)",
    )
    result = codemod_source(set_up, CodemodOptions(precision="fp16"))
    assert result.problems == [] and 'Fabric(precision="16-mixed")' in result.new_source


@pytest.mark.parametrize(("pin", "refused"), [("lightning>=1.8", True), ("lightning>=2.1", False)])
def test_fabric_edits_follow_the_lightning_pin(tmp_path, pin: str, refused: bool):
    (tmp_path / ".git").mkdir()
    (tmp_path / "requirements.txt").write_text(pin + "\n", encoding="utf-8")
    step = "    loss = model(x)\n    fabric.backward(loss)\n    optimizer.step()\n"
    options = CodemodOptions(precision="bf16", grad_accum_steps=2)
    result = codemod_source(_fabric_script(step), options, "train.py", tmp_path / "train.py")
    texts = [p.text for p in result.problems]
    assert len(texts) == (2 if refused else 0), texts
    assert all(f"requirements.txt:1 pins {pin}" in t for t in texts)
