"""The pre-pass (freezegen/check/outline.py): it keeps libcst away from files no rule can fire
on, and it never hides a finding: with it and without it (every rule's ``possible`` forced
True) check reports the same findings and writes the same fixes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from freezegen.check import check_source
from freezegen.check.outline import Outline
from freezegen.check.registry import all_rules

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = [ex for rule in all_rules() for ex in (*rule.valid, *rule.invalid)]

ACCUMULATES = """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
{body}
        if (step + 1) % accum == 0:
            optimizer.step()
"""
# Shapes where what the rules see (libcst, freezegen/check/loops.py) and what a naive reading
# of the tree sees differ: each must give the same findings with and without the pre-pass.
SHAPES = {
    "undivided": ACCUMULATES.format(body="        model(batch).loss.backward()"),
    "divided-before": ACCUMULATES.format(
        body="        loss = model(batch).loss\n        loss = loss / accum\n"
        "        loss.backward()"
    ),
    "divided-in-a-nested-loop": ACCUMULATES.format(
        body="        for part in batch:\n            loss = model(part) / accum\n"
        "        loss.backward()"
    ),
    "assigned-in-a-helper-only": ACCUMULATES.format(
        body="        def helper():\n            loss = model(batch) * 0.5\n"
        "        loss = model(batch)\n        loss.backward()"
    ),
    "zero-grad-in-a-match": ACCUMULATES.format(
        body="        match batch:\n            case _:\n                for part in batch:\n"
        "                    optimizer.zero_grad()"
    ),
    "step-in-a-lambda": ACCUMULATES.format(
        body="        hook = lambda: optimizer.step()\n        optimizer.zero_grad()"
    ),
    "step-in-a-nested-def": ACCUMULATES.format(
        body="        def later():\n            optimizer.step()\n        optimizer.zero_grad()"
    ),
    "zero-grad-under-an-outer-window": """\
import torch

for epoch in range(3):
    if epoch % 2 == 0:
        for step, batch in enumerate(loader):
            optimizer.zero_grad()
            model(batch).loss.backward()
            if step % accum != 0:
                continue
            optimizer.step()
""",
    "zero-grad-in-the-loop-else": ACCUMULATES.format(
        body="        for part in batch:\n            pass\n        else:\n"
        "            optimizer.zero_grad()"
    ),
    "scheduler-first-in-a-nested-loop": """\
import torch

for epoch in range(3):
    for batch in loader:
        lr_scheduler.step()
        model(batch).loss.backward()
        optimizer.step()
""",
    "scheduler-after": """\
import torch

for epoch in range(3):
    for batch in loader:
        model(batch).loss.backward()
        optimizer.step()
    lr_scheduler.step()
""",
    "later-import-wins": """\
import torch
try:
    from torch import load
except ImportError:
    from safe import load
finally:
    import pickle as torch
import torch as th
state = load("x.pt")
torch.load("y.pt")
th.load("z.pt")
""",
    "freezes-through-a-helper": """\
import torch


def set_trainable(module, flag):
    for p in module.parameters():
        p.requires_grad = flag


set_trainable(model.encoder, False)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
""",
    "clip-with-a-named-scaler": """\
import torch

amp_helper = torch.amp.GradScaler("cuda")
amp_helper.scale(loss).backward()
torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
amp_helper.step(optimizer)
""",
}
CASES = (
    [(f"example-{i}", ex) for i, ex in enumerate(EXAMPLES)]
    + [(p.name, p.read_text("utf-8")) for p in sorted(FIXTURES.rglob("*.py"))]
    + list(SHAPES.items())
)


@pytest.fixture
def without_pre_pass(monkeypatch):
    def run(source: str):
        with monkeypatch.context() as patch:
            for rule in all_rules():
                patch.setattr(rule, "possible", classmethod(lambda cls, outline: True))
            return check_source(source, "train.py", fix=True, unsafe_fixes=True)

    return run


@pytest.mark.parametrize(("name", "source"), CASES, ids=[name for name, _ in CASES])
def test_the_pre_pass_never_changes_findings_or_fixes(name, source, without_pre_pass):
    fast = check_source(source, "train.py", fix=True, unsafe_fixes=True)
    slow = without_pre_pass(source)
    assert fast.diagnostics == slow.diagnostics
    assert (fast.fixed_source, fast.fixes) == (slow.fixed_source, slow.fixes)


def test_the_shapes_cover_findings_and_their_absence():
    """The shapes above are worth comparing: some fire, some do not, for each loop rule."""
    found = {name: {d.code for d in check_source(src).diagnostics} for name, src in SHAPES.items()}
    assert {"FG503", "FG505", "FG508", "FG509", "FG502", "FG507"} <= set().union(*found.values())
    assert found["divided-before"] == set() and found["scheduler-after"] == set()
    assert found["assigned-in-a-helper-only"] == {"FG503"}  # the helper's `*` is not the loop's
    # loops.py takes a match statement's calls as the loop's own, even in a loop inside it
    assert "FG505" in found["zero-grad-in-a-match"] & found["zero-grad-under-an-outer-window"]


@pytest.mark.parametrize(
    "source",
    [
        # accumulation done right: divided loss, zero_grad inside the window
        ACCUMULATES.format(
            body="        loss = model(batch).loss / accum\n        loss.backward()"
        ),
        # a step every batch and a logging window: nothing accumulates
        "import torch\nfor i, b in enumerate(loader):\n    model(b).loss.backward()\n"
        "    optimizer.step()\n    optimizer.zero_grad()\n    if i % 100 == 0:\n"
        "        print(i)\n",
        # torch.load with weights_only, checkpoint with use_reentrant
        "import torch\nstate = torch.load(p, weights_only=True)\n"
        "y = torch.utils.checkpoint.checkpoint(f, x, use_reentrant=False)\n",
    ],
)
def test_files_no_rule_can_fire_on_skip_libcst(source):
    result = check_source(source, "train.py")
    assert result.diagnostics == [] and not result.parsed


def test_the_outline_resolves_names_like_the_rules():
    outline = Outline(
        ast.parse(
            "import torch.cuda.amp as amp\nfrom torch import load as L\n"
            "if x:\n    import numpy as torch\nsched = get_cosine_schedule_with_warmup(o)\n"
            "opt: Lion = Lion(ps)\ngs = amp.GradScaler()\n"
        )
    )
    assert outline.imports.qualify("amp.GradScaler") == "torch.cuda.amp.GradScaler"
    assert outline.imports.qualify("L") == "torch.load"
    assert outline.imports.qualify("torch.load") == "numpy.load"  # the later import wins
    assert [outline.role(r) for r in ("sched", "opt", "gs", "model")] == [
        "scheduler",
        "optimizer",
        "scaler",
        None,
    ]
