"""Where the freeze goes around wraps, the script's own requires_grad, and optimizers built by a
factory that a configuration names (freezegen/codemod/placement.py, setup.py, script.py)."""

from __future__ import annotations

import pytest

from freezegen.codemod import CodemodOptions, codemod_source

FREEZE = CodemodOptions(freeze=("0.*",))
HEADER = """\
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

"""
LOOP = """\
for x in batches:
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
"""


def _freeze(body: str, options: CodemodOptions = FREEZE) -> tuple[list[str], list[str]]:
    """The rewritten lines (empty when refused) and the problems, for HEADER + body + LOOP."""
    result = codemod_source(HEADER + body + LOOP, options, "train.py")
    lines = result.new_source.splitlines() if result.new_source else []
    return lines, [str(p) for p in result.problems]


def _freeze_line(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if ".named_parameters():" in line)


def test_a_compiled_model_is_frozen_above_the_compile_before_its_wrap():
    # litgpt's pretrain: torch.compile then fabric.setup; compile's names carry `_orig_mod.`
    body = (
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())\n"
        "model = torch.compile(model)\n"
        "model = DDP(model)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert _freeze_line(lines) < lines.index("model = torch.compile(model)")


def test_a_compile_alone_keeps_the_freeze_above_the_optimizer():
    body = (
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())\n"
        "model = torch.compile(model)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert lines.index("model = torch.compile(model)") < _freeze_line(lines)


@pytest.mark.parametrize(
    ("wrap", "placed"),
    [
        ("model = DDP(model) if distributed else model", True),
        ("model = FSDP(model, use_orig_params=True)", True),
        ("model = FSDP(model, use_orig_params=flag)", False),
        ("model = DDP(model.to(rank)).to(rank)", True),
    ],
)
def test_wraps_the_freeze_goes_above(wrap: str, placed: bool):
    body = f"model = nn.Sequential(nn.Linear(4, 8))\n{wrap}\n" + (
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    if placed:
        assert problems == [] and _freeze_line(lines) < lines.index(wrap)
    else:
        (problem,) = problems
        assert problem.startswith("train.py:7:9: cannot add freeze: `model` is wrapped here in")
        assert "FSDP with use_orig_params=flag" in problem


def test_a_part_sharded_in_a_loop_moves_the_freeze_above_the_loop():
    body = (
        "from torch.distributed.fsdp import fully_shard\n"
        "model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))\n"
        "for index, layer in enumerate(model):\n"
        "    fully_shard(layer)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert _freeze_line(lines) < lines.index("for index, layer in enumerate(model):")


def test_a_head_replaced_between_the_wrap_place_and_the_optimizer_is_refused():
    body = (
        "model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))\n"
        "if distributed:\n"
        "    model = DDP(model)\n"
        "model.module[1] = nn.Linear(8, 2)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    _, (problem,) = _freeze(body)
    assert problem.startswith("train.py:9:1: cannot add freeze: `model.module` is bound here")


@pytest.mark.parametrize(
    ("statement", "refused_at"),
    [
        # straight-line above the optimizer: runs before the freeze, which wins
        ("model[1].requires_grad_(True)\n", None),
        # below the optimizer: runs after the freeze
        (None, 8),
        # a lambda above may be called at any time
        ("unfreeze = lambda: model.requires_grad_(True)\n", 7),
    ],
)
def test_the_scripts_own_requires_grad(statement: str | None, refused_at: int | None):
    body = "model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))\n" + (statement or "")
    body += "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    if statement is None:
        body += "model[1].weight.requires_grad = True\n"
    lines, problems = _freeze(body)
    if refused_at is None:
        assert problems == [] and lines
    else:
        (problem,) = problems
        assert problem.startswith(f"train.py:{refused_at}:")


@pytest.mark.parametrize(
    ("call", "filtered"),
    [
        ("config.instantiate(cfg, lr=0.1, params=model.parameters())", True),
        ("instantiate_bnb_optimizer(optimizer_name, model.parameters())", True),
        # literal groups: the trainable-only transform asks for them to be filtered by hand
        ("build_optimizer(cfg, [{'params': model.parameters(), 'lr': 0.1}])", False),
    ],
)
def test_a_factory_handed_one_models_parameters_is_the_optimizer(call: str, filtered: bool):
    body = f"model = nn.Sequential(nn.Linear(4, 8))\noptimizer = {call}\n"
    lines, problems = _freeze(body)
    assert problems == []
    assert "for param_name, param in model.named_parameters():" in lines
    options = CodemodOptions(freeze=("0.*",), trainable_only_optimizer=True)
    lines, problems = _freeze(body, options)
    if filtered:
        assert problems == []
        assert any("if p.requires_grad]" in line for line in lines if "optimizer =" in line)
    else:  # never silently left unfiltered
        (problem,) = problems
        assert problem.startswith("train.py:7:") and "trainable-only optimizer" in problem


def test_a_factory_without_parameters_in_view_is_refused():
    call = "config.instantiate(cfg, params)"
    body = f"model = nn.Sequential(nn.Linear(4, 8))\nhead = nn.Linear(8, 1)\noptimizer = {call}\n"
    _, (problem,) = _freeze(body)
    assert problem.startswith("train.py:8:")
    assert "it is not handed exactly one collection" in problem


def test_two_models_in_one_collection_are_each_frozen_above_the_optimizer():
    call = "config.instantiate(cfg, [*model.parameters(), *head.parameters()])"
    body = f"model = nn.Sequential(nn.Linear(4, 8))\nhead = nn.Linear(8, 1)\noptimizer = {call}\n"
    lines, problems = _freeze(body)
    assert problems == []
    header = 'for model_name, module in (("model", model), ("head", head)):'
    assert lines.index(header) < lines.index(f"optimizer = {call}")
    # the same freeze with trainable-only is refused: the optimizer takes two models
    options = CodemodOptions(freeze=("0.*",), trainable_only_optimizer=True)
    _, (problem,) = _freeze(body, options)
    assert problem.startswith("train.py:8:")
    assert "trains the parameters of model and head" in problem


def test_two_models_and_a_second_optimizer_are_refused():
    body = (
        "model = nn.Sequential(nn.Linear(4, 8))\nhead = nn.Linear(8, 1)\n"
        "optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.1)\n"
        "head_optimizer = torch.optim.SGD(head.parameters(), lr=0.1)\n"
    )
    _, (problem,) = _freeze(body)
    assert problem.startswith("train.py:9:") and "besides `optimizer`" in problem


def test_a_factory_whose_result_is_never_stepped_is_not_the_optimizer():
    source = (
        HEADER + "model = nn.Sequential(nn.Linear(4, 8))\n"
        "optimizer = config.instantiate(cfg, model.parameters())\n"
        "for x in batches:\n    model(x).sum().backward()\n    optim.step()\n"
    )
    (problem,) = codemod_source(source, FREEZE, "train.py").problems
    assert problem.line == 7 and "and then stepped" in problem.text


def test_a_branch_taking_the_parameters_another_way_gets_the_freeze_too():
    # torchtune's distributed recipe: one optimizer per parameter stepped in backward on one
    # path, the configured optimizer on the other; the freeze must run on both
    body = (
        "model = nn.Sequential(nn.Linear(4, 8))\n"
        "if in_backward:\n"
        "    optim_dict = {p: torch.optim.SGD([p]) for p in model.parameters()}\n"
        "    register_hooks(model, optim_dict)\n"
        "else:\n"
        "    optimizer = config.instantiate(cfg, model.parameters())\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert _freeze_line(lines) < lines.index("if in_backward:")
    alone = body.replace("p: torch.optim.SGD([p]) for p in model.parameters()", "")
    lines, problems = _freeze(alone)
    assert problems == [] and lines.index("else:") < _freeze_line(lines)


def test_a_wrap_under_the_main_guard_places_the_freeze_in_that_block():
    source = HEADER + (
        'if __name__ == "__main__":\n'
        "    model = nn.Sequential(nn.Linear(4, 8))\n"
        "    model = DDP(model)\n"
        "    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "    for x in batches:\n"
        "        loss = model(x).sum()\n"
        "        loss.backward()\n"
        "        optimizer.step()\n"
    )
    result = codemod_source(source, FREEZE, "train.py")
    assert result.problems == [] and result.new_source is not None
    lines = result.new_source.splitlines()
    freeze = _freeze_line(lines)
    assert lines.index("    model = nn.Sequential(nn.Linear(4, 8))") < freeze
    assert freeze < lines.index("    model = DDP(model)")


def test_parameters_added_between_the_wrap_place_and_the_optimizer_are_refused():
    # the freeze above the wrap would run before the new embedding exists
    body = (
        "model = nn.Sequential(nn.Linear(4, 8))\n"
        "model = DDP(model)\n"
        "model.module.resize_token_embeddings(32)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    )
    _, (problem,) = _freeze(body)
    assert problem.startswith(
        "train.py:8:1: cannot add freeze: model.module.resize_token_embeddings"
    )


BY_HAND_IN_MAIN = """\
import torch

if __name__ == "__main__":
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    if use_optimizer:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in batches:
        model.zero_grad()
        loss = model(x).sum()
        loss.backward()
        if use_optimizer:
            optimizer.step()
        else:
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-0.1)
"""


def test_a_hand_written_step_lifts_the_freeze_above_the_optimizer_s_if_only():
    """The script steps by hand when it builds no optimizer, so the freeze goes above the `if`
    that builds one, but not above `if __name__ == "__main__":`, which builds the model."""
    result = codemod_source(BY_HAND_IN_MAIN, FREEZE, "train.py")
    assert result.problems == []
    lines = (result.new_source or "").splitlines()
    freeze = lines.index("    frozen = 0")
    assert lines[freeze - 1].strip().startswith("model = ")
    assert lines[freeze + 7] == "    if use_optimizer:"
    guard = lines.index("            for p in model.parameters():")
    assert lines[guard + 1 : guard + 3] == [
        "                if p.grad is None:",
        "                    continue",
    ]


def test_a_raw_module_taken_from_the_wrap_is_frozen_above_the_wrap():
    # llm.c: `raw_model = model.module if ddp else model` builds the optimizer after DDP
    body = (
        "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())\n"
        "if ddp:\n"
        "    model = DDP(model)\n"
        "raw_model = model.module if ddp else model\n"
        "optimizer = torch.optim.SGD(raw_model.parameters(), lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert _freeze_line(lines) < lines.index("if ddp:")
    assert "for param_name, param in model.named_parameters():" in lines


REFERENCE = (
    "def save_grads(model):\n"
    "    torch.save({n: p.grad for n, p in model.named_parameters()}, 'grads.pt')\n"
    "model = nn.Sequential(nn.Linear(4, 8), nn.ReLU())\n"
    "model = torch.compile(model)\n"
    "model(torch.ones(1, 4)).sum().backward()\n"
    "{save}"
    "model = DDP(model)\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "for x in batches:\n"
    "    optimizer.zero_grad()\n"
    "    loss = model(x).sum()\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
)


@pytest.mark.parametrize(
    ("save", "refused_at"),
    [
        # called once, above the wrap: the freeze goes below it, just above the wrap
        ("save_grads(model)\n", None),
        # handed on as a callback, it may run at any time: its read is not provably early
        ("hooks = [save_grads]\n", 7),
    ],
)
def test_a_reference_pass_between_a_compile_and_its_wrap(save: str, refused_at: int | None):
    source = HEADER + REFERENCE.replace("{save}", save)
    result = codemod_source(source, FREEZE, "train.py")
    problems = [str(p) for p in result.problems]
    if refused_at is None:
        lines = result.new_source.splitlines()
        assert problems == []
        assert lines.index("save_grads(model)") < _freeze_line(lines)
        assert _freeze_line(lines) < lines.index("model = DDP(model)")
        assert "        param.grad = None" in lines  # the reference pass's gradient dropped
        (note,) = [str(n) for n in result.notes]
        assert "torch.compile(...)'s (line 9)" in note and "`_orig_mod.`" in note
    else:
        (problem,) = problems
        assert problem.startswith(f"train.py:{refused_at}:")
        assert "reads `p.grad` of every parameter" in problem


@pytest.mark.parametrize(
    ("condition", "loop"),
    [
        # read again above the optimizer: each path freezes and counts the models it trains
        ("args.both", '(("model", model), ("head", head)) if args.both else (("head", head),)'),
        # a call may not give the same answer twice: every model, on every path
        ("both()", '(("model", model), ("head", head))'),
    ],
)
def test_two_models_on_some_paths_are_frozen_where_they_train(condition: str, loop: str):
    params = f"chain(model.parameters(), head.parameters()) if {condition} else head.parameters()"
    body = (
        "from itertools import chain\n"
        "model = nn.Sequential(nn.Linear(4, 8))\nhead = nn.Linear(8, 1)\n"
        f"params = {params}\n"
        "optimizer = torch.optim.SGD(params, lr=0.1)\n"
    )
    lines, problems = _freeze(body)
    assert problems == []
    assert f"for model_name, module in {loop}:" in lines
    assert lines.index(f"for model_name, module in {loop}:") < lines.index(f"params = {params}")
