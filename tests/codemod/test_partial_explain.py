"""``--partial`` applies what can act and names what cannot; ``--explain`` maps what was found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.codemod import CodemodOptions, codemod_source

# accumulation cannot act (a `while` loop over the same batch); freeze and precision can
WHILE_SCRIPT = """\
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
first = model[0].weight.detach().clone()
steps, features = 0, torch.randn(8, 4)
while steps < 6:
    x = features
    loss = nn.functional.mse_loss(model(x), x.sum(1, keepdim=True))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    steps += 1
assert torch.equal(model[0].weight, first), "the frozen layer moved"
print("ok", steps)
"""
ALL = CodemodOptions(freeze=("0.*",), precision="bf16", grad_accum_steps=4)
ABLE = CodemodOptions(freeze=("0.*",), precision="bf16")


def test_default_is_all_or_nothing():
    result = codemod_source(WHILE_SCRIPT, ALL, "train.py")
    assert not result.changed and result.applied == []
    assert result.not_applied == ["accumulation"]
    (problem,) = result.problems
    assert str(problem).startswith("train.py:9:1: cannot add accumulation:")
    assert "draws no new batch" in str(problem)


def test_partial_equals_the_transforms_that_can_act_alone():
    partial = codemod_source(WHILE_SCRIPT, ALL, "train.py", partial=True)
    alone = codemod_source(WHILE_SCRIPT, ABLE, "train.py")
    assert alone.changed and alone.applied == ["freeze", "precision"]
    assert partial.new_source == alone.new_source
    assert partial.applied == ["freeze", "precision"]
    assert partial.not_applied == ["accumulation"]
    assert [p.line for p in partial.problems] == [9]


def test_partial_rewrite_runs_with_its_transforms(tmp_path: Path):
    result = codemod_source(WHILE_SCRIPT, ALL, "train.py", partial=True)
    assert result.new_source is not None
    script = tmp_path / "train.py"
    script.write_text(result.new_source, encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok 6"  # every step taken; the frozen layer did not move


def test_partial_with_nothing_able_leaves_the_file():
    result = codemod_source(WHILE_SCRIPT, CodemodOptions(grad_accum_steps=4), partial=True)
    assert not result.changed and result.not_applied == ["accumulation"]


def test_partial_cli_writes_and_names_what_it_left(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text(WHILE_SCRIPT, encoding="utf-8")
    flags = ["--freeze", "0.*", "--precision", "bf16", "--grad-accum-steps", "4"]
    result = CliRunner().invoke(app, ["codemod", *flags, "--partial", "--write", str(script)])
    assert result.exit_code == 1  # something asked for was not done
    assert f"{script}: applied freeze, precision; not applied accumulation" in result.stderr
    assert "rewrote 1 (1 in part) of 1 file(s)" in result.stderr
    assert script.read_text(encoding="utf-8") == codemod_source(WHILE_SCRIPT, ABLE).new_source


EXPLAINED = """\
import torch
from torch import nn

model = nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
scaler = torch.amp.GradScaler("cuda")


def train(loader):
    for x, y in loader:
        out = model(x)
        loss = nn.functional.mse_loss(out, y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        scheduler.step()
"""


def test_explain_maps_what_the_transforms_act_on():
    result = codemod_source(EXPLAINED, CodemodOptions(grad_accum_steps=2), explain=True)
    assert [(s.what, s.line, s.text) for s in result.seen] == [
        ("backward", 14, "scaler.scale(loss).backward() (in train())"),
        ("loop", 11, "for x, y in loader"),
        ("forward", 12, "lines 12-13 compute `loss` (what autocast would cover)"),
        ("optimizer", 5, "`optimizer` = torch.optim.SGD(...), trains `model`"),
        ("scheduler", 18, "scheduler.step() (in the loop)"),
        ("scaler", 7, "`scaler` = torch.amp.GradScaler(...)"),
        ("accumulation", 0, "none of the script's own"),
        ("autocast", 0, "none around the loss"),
    ]


def test_explain_says_why_an_entry_is_missing():
    # a loss computed inside the backward statement gets a line of its own before this map is
    # drawn (codemod/lines.py), so the forward pass that is not found is one in another block
    source = (
        "import torch\nmodel = torch.nn.Linear(2, 2)\nif True:\n"
        "    loss = model(torch.ones(2)).sum()\nloss.backward()\n"
    )
    result = codemod_source(source, CodemodOptions(grad_accum_steps=2), explain=True)
    assert [(s.what, s.line) for s in result.seen][:4] == [
        ("backward", 5),
        ("loop", 0),
        ("forward", 5),
        ("optimizer", 0),
    ]
    assert result.seen[2].text == (
        "not found: no `loss = ...` above the backward call in its block, so the forward pass "
        "cannot be found"
    )
    assert result.seen[3].text.startswith("not found: no optimizer construction found")


STEP_FUNCTION = """import torch

model = torch.nn.Linear(2, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.ones(2), torch.ones(2))] * 4


def train_step(x, y):
    optimizer.zero_grad()
    loss = ((model(x) - y) ** 2).sum()
    loss.backward()
    optimizer.step()


def run_once():
    train_step(torch.ones(2), torch.ones(2))


for x, y in loader:
    train_step(x, y)
"""


def test_explain_names_the_loop_that_calls_the_step_function():
    result = codemod_source(STEP_FUNCTION, CodemodOptions(grad_accum_steps=2), explain=True)
    loop = next(s for s in result.seen if s.what == "loop")
    # Two calls: the accumulation cannot count micro-steps, and the map says why.
    assert loop.line == 0
    assert loop.text.startswith("none: the backward call is in train_step(): ")
    one_call = STEP_FUNCTION.replace(
        "def run_once():\n    train_step(torch.ones(2), torch.ones(2))\n\n\n", ""
    )
    result = codemod_source(one_call, CodemodOptions(grad_accum_steps=2), explain=True)
    loop = next(s for s in result.seen if s.what == "loop")
    assert (loop.line, loop.text) == (15, "for x, y in loader (calls train_step())")


def test_explain_maps_each_training_loop_of_its_own():
    source = (Path(__file__).parents[1] / "fixtures/codemod/loop_per_backward.in.py").read_text()
    result = codemod_source(source, CodemodOptions(grad_accum_steps=2), explain=True)
    assert [(s.what, s.line) for s in result.seen if s.what in ("backward", "loop")] == [
        ("backward", 39),
        ("loop", 35),
        ("backward", 49),
        ("loop", 45),
    ]
    assert [s.what for s in result.seen].count("accumulation") == 2


def test_explain_maps_a_reference_pass_apart_from_the_training_step():
    source = (Path(__file__).parents[1] / "fixtures/codemod/reference_pass.in.py").read_text()
    result = codemod_source(source, CodemodOptions(grad_accum_steps=4), explain=True)
    seen = [(s.what, s.line) for s in result.seen]
    assert ("backward", 129) in seen and ("reference pass", 96) in seen
    assert [s.what for s in result.seen].count("backward") == 1


def test_explain_cli_prints_the_map_and_writes_nothing(tmp_path: Path):
    script = tmp_path / "train.py"
    script.write_text(EXPLAINED, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["codemod", "--grad-accum-steps", "2", "--explain", str(script)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(script)
    assert lines[1].split()[:3] == ["backward", "14", "scaler.scale(loss).backward()"]
    assert lines[-1].split() == ["would", "add", "accumulation"]
    assert "@@" not in result.stdout  # no diff
    assert script.read_text(encoding="utf-8") == EXPLAINED
    refused = runner.invoke(app, ["codemod", "--precision", "bf16", "--explain", "--write", "x.py"])
    assert refused.exit_code == 2
    assert "--explain shows what was found and writes nothing" in refused.stderr


NOTED = """\
import torch
from torch import nn

model = nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
loader = [(torch.randn(8, 4), torch.rand(8, 1)) for _ in range(5)]
for x, y in loader:
    loss = nn.functional.LOSS(model(x), y)
    loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
"""


def test_a_refused_file_says_nothing_about_edits_it_did_not_make():
    # accumulation notes that the scheduler now steps once per window; precision refuses a
    # binary_cross_entropy loss: the file is unchanged, so the note would mislead
    both = CodemodOptions(precision="bf16", grad_accum_steps=4)
    made = codemod_source(NOTED.replace("LOSS", "mse_loss"), both, "train.py")
    assert made.changed and any("scheduler now steps once per 4" in n.text for n in made.notes)
    source = NOTED.replace("LOSS", "binary_cross_entropy")
    refused = codemod_source(source, both, "train.py")
    assert not refused.changed and refused.not_applied == ["precision"]
    assert refused.notes == []
    partial = codemod_source(source, both, "train.py", partial=True)
    assert partial.applied == ["accumulation"] and partial.notes == made.notes


def test_a_kept_mechanism_is_no_refusal_and_is_said_on_the_command_line(tmp_path: Path):
    """The window from the environment is the user's to set: exit 0, the freeze is written,
    the action is located, the summary counts it, and --explain lists the kept transform."""
    source = (
        WHILE_SCRIPT.replace(
            "steps, features = 0, torch.randn(8, 4)\nwhile steps < 6:",
            "import os\nwindow = int(os.environ['WINDOW'])\n"
            "for step, features in enumerate([torch.randn(8, 4)] * 12):",
        )
        .replace("    loss.backward()\n", "    (loss / window).backward()\n")
        .replace(
            "    optimizer.step()\n", "    if (step + 1) % window == 0:\n        optimizer.step()\n"
        )
        .replace("    optimizer.zero_grad()\n    steps += 1\n", "        optimizer.zero_grad()\n")
        .replace('print("ok", steps)', 'print("ok")')
    )
    script = tmp_path / "train.py"
    script.write_text(source, encoding="utf-8")
    flags = ["--freeze", "0.*", "--grad-accum-steps", "4"]
    result = CliRunner().invoke(app, ["codemod", str(script), *flags, "--write"])
    assert result.exit_code == 0, result.output
    assert f"{script}:14:5: keeping the script's own accumulation: the script already" in (
        result.output
    )
    assert "set window to 4 yourself (the codemod cannot: `os.environ['WINDOW']`" in result.output
    assert result.output.rstrip().endswith(
        "rewrote 1 of 1 file(s); 1 setting(s) of the scripts' own for you to set (above)"
    )
    written = script.read_text(encoding="utf-8")
    assert "requires_grad_(False)" in written and written.count("% window") == 1
    run = subprocess.run(
        [sys.executable, str(script)],
        env={"WINDOW": "4", "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
    script.write_text(source, encoding="utf-8")
    explained = CliRunner().invoke(app, ["codemod", str(script), *flags, "--explain"])
    assert "  yours to set" in explained.output and "accumulation\n" in explained.output
