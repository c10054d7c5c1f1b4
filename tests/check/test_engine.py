"""The library surface: check_source / check_paths take bytes or paths and return data."""

from __future__ import annotations

from freezegen.check import check_paths, check_source
from freezegen.check.names import collect_names
from freezegen.lint import Overrides

ACCUM = """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        model(batch).loss.backward()
        if (step + 1) % accum == 0:
            optimizer.step()
"""


def test_prefilter_parses_only_files_a_rule_could_fire_on(tmp_path):
    (tmp_path / "model.py").write_text("import torch\n\ndef f(x):\n    return x\n", "utf-8")
    (tmp_path / "train.py").write_text(ACCUM, encoding="utf-8")
    report = check_paths([tmp_path], Overrides(use_config=False))
    assert (report.files, report.parsed) == (2, 1)
    assert sorted(d.code for d in report.diagnostics) == ["FG503", "FG505"]


def test_one_pass_finds_every_rule_and_sorts_by_position():
    found = check_source(ACCUM, "train.py").diagnostics
    assert [(d.line, d.code) for d in found] == [(6, "FG505"), (7, "FG503")]
    assert found[1].message.startswith("gradients accumulate over `accum` micro-steps")


def test_failures_are_findings_not_exceptions():
    (bad,) = check_source(b"import torch\nx = '\xff'\ntorch.load(p)\n", "a.py").diagnostics
    assert (bad.code, bad.line) == ("FG500", 2) and "cannot decode" in bad.message
    (bad,) = check_source(b"import torch\ntorch.load(p\n", "b.py").diagnostics
    assert bad.code == "FG500" and bad.message.startswith("syntax error")
    declared = (
        b"# -*- coding: latin-1 -*-\nimport torch\nx = '\xff'\nm.load_state_dict(torch.load(p))\n"
    )
    result = check_source(declared, "c.py", fix=True)
    assert [d.code for d in result.diagnostics] == []  # fixed, as text: the caller encodes it
    assert result.fixed_source == declared.decode("latin-1").replace(
        "load(p)", "load(p, weights_only=True)"
    )


def test_names_resolve_aliases_and_from_imports():
    import libcst as cst

    module = cst.parse_module(
        "import torch.cuda.amp as amp\nfrom torch.cuda.amp import autocast as ac\n"
        "import torch as th\nif True:\n    from torch.utils import checkpoint\n"
    )
    names = collect_names(module)
    assert names.qualified(cst.parse_expression("amp.GradScaler")) == "torch.cuda.amp.GradScaler"
    assert names.qualified(cst.parse_expression("ac")) == "torch.cuda.amp.autocast"
    assert names.qualified(cst.parse_expression("th.load")) == "torch.load"
    assert names.qualified(cst.parse_expression("checkpoint.checkpoint")) == (
        "torch.utils.checkpoint.checkpoint"
    )
    assert names.qualified(cst.parse_expression("other.load")) is None
    assert names.local_for("torch") == "th"


FIXABLE_AT_KNOWN_LINES = """\
import torch
from torch.utils.checkpoint import checkpoint

state = torch.load("ckpt.pt", map_location="cpu")
model.load_state_dict(state)
legacy = torch.load("old.pt", weights_only=False)
whole = torch.load("model.pt")  # unsafe to fix: --fix leaves it
y = checkpoint(block, x)
z = checkpoint(block, x, use_reentrant=False)
with torch.cuda.amp.autocast():
    pass
"""


def test_fix_edits_only_the_lines_of_its_findings(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(FIXABLE_AT_KNOWN_LINES, encoding="utf-8")
    before = check_paths([path], Overrides(use_config=False)).diagnostics
    assert [(d.code, d.line) for d in before] == [
        ("FG507", 4),
        ("FG507", 7),
        ("FG506", 8),
        ("FG501", 10),
    ]
    report = check_paths([path], Overrides(use_config=False), fix=True)
    assert report.fixes == 3 and [(d.code, d.line) for d in report.diagnostics] == [("FG507", 7)]
    old, new = FIXABLE_AT_KNOWN_LINES.splitlines(), path.read_text("utf-8").splitlines()
    assert len(old) == len(new)
    assert [i + 1 for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [4, 8, 10]
    assert new[3] == 'state = torch.load("ckpt.pt", map_location="cpu", weights_only=True)'
