"""Where a script's own knob is defined, and when the codemod may set it (codemod/knobs.py)."""

from __future__ import annotations

import libcst as cst
import pytest

from freezegen.codemod import CodemodOptions
from freezegen.codemod.engine import codemod_source
from freezegen.codemod.knobs import set_knob
from freezegen.codemod.script import CannotAct, Script

ACCUM = CodemodOptions(grad_accum_steps=4)

BY_HAND = """\
import torch

{setup}
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step, (x, y) in enumerate(loader):
    loss = (model(x) - y).pow(2).mean() / {knob}
    loss.backward()
    if (step + 1) % {knob} == 0:
        optimizer.step()
        optimizer.zero_grad()
"""


def _rewrite(setup: str, knob: str) -> tuple[str, list[str], list[str]]:
    source = BY_HAND.format(setup=setup, knob=knob)
    result = codemod_source(source, ACCUM, "train.py")
    new = result.new_source if result.changed else None
    return new or "", [str(p) for p in result.problems], [str(n) for n in result.notes]


def _kept(source: str) -> str:
    """The one action of a file whose accumulation is the script's own, kept for the user to
    set: nothing refused, nothing changed."""
    result = codemod_source(source, ACCUM, "train.py")
    assert result.problems == [] and not result.changed and result.kept == ["accumulation"]
    (action,) = [str(a) for a in result.actions]
    assert action.startswith("train.py:") and "keeping the script's own accumulation: " in action
    return action


@pytest.mark.parametrize(
    ("setup", "knob", "edited", "where"),
    [
        (
            'parser.add_argument("--accum", dest="gradient_accumulation_steps", type=int, '
            "default=1)\nargs = parser.parse_args()",
            "args.gradient_accumulation_steps",
            "default=4)",
            "its argparse default; pass --accum to change it",
        ),
        (
            'parser.add_argument("--gradient-accumulation-steps", type=int)\n'
            "args = parser.parse_args()",
            "args.gradient_accumulation_steps",
            'parser.add_argument("--gradient-accumulation-steps", type=int, default=4)',
            "its argparse default",
        ),
        (
            "class TrainConfig:\n    gradient_accumulation_steps: int = 1\n\n\ncfg = TrainConfig()",
            "cfg.gradient_accumulation_steps",
            "gradient_accumulation_steps: int = 4",
            "a default of class TrainConfig",
        ),
        (
            'config = {"lr": 0.1, "gradient_accumulation_steps": 2}\n'
            'accum_steps = int(config["gradient_accumulation_steps"])',
            "accum_steps",
            '"gradient_accumulation_steps": 4}',
            "an entry of the script's config dict",
        ),
    ],
)
def test_the_one_literal_the_knob_reads_is_set(setup: str, knob: str, edited: str, where: str):
    new, problems, notes = _rewrite(setup, knob)
    assert problems == [] and edited in new
    (note,) = notes
    assert f"set the script's own {knob} to 4" in note and where in note
    again = codemod_source(new, ACCUM, "train.py")  # the knob already holds 4
    assert not again.changed and again.problems == [] and again.notes == []


@pytest.mark.parametrize(
    ("setup", "knob", "reason"),
    [
        (
            'parser.add_argument("--grad_accum", type=int, required=True)\n'
            "args = parser.parse_args()",
            "args.grad_accum",
            "the option --grad_accum (line 3) is required, so it has no default to set: "
            "pass --grad_accum 4",
        ),
        (
            'parser.add_argument("--grad_accum", type=int, default=1)\n'
            "parser.set_defaults(**defaults)\nargs = parser.parse_args()",
            "args.grad_accum",
            "set_defaults(...) at line 4 may replace the default of `grad_accum`",
        ),
        (
            'parser.add_argument("--grad_accum", type=int, default=1)\n'
            "args = parser.parse_args()\nargs.grad_accum = max(1, args.grad_accum // world)",
            "args.grad_accum",
            "`grad_accum` is defined or changed at lines 5, 3",
        ),
        (
            "grad_accum = 1\nexec(open('configurator.py').read())",
            "grad_accum",
            "`grad_accum` is a module constant, but exec(...) at line 4 may overwrite it from "
            "outside the file",
        ),
        (
            "grad_accum = 16 // world_size",
            "grad_accum",
            "`16 // world_size` is computed at line 3, not a literal",
        ),
        (
            'config = {"grad_accum": 1}\nconfig.update(overrides)',
            'config["grad_accum"]',
            "the entry 'grad_accum' is defined or changed at lines 3, 4",
        ),
        (
            "class TrainConfig:\n    grad_accum: int = 1\n\n\ncfg = TrainConfig(grad_accum=8)",
            "cfg.grad_accum",
            "TrainConfig(...) at line 7 may set `grad_accum`, whose default is at line 4",
        ),
    ],
)
def test_a_knob_that_may_hold_another_value_is_left_to_the_user(setup: str, knob: str, reason: str):
    action = _kept(BY_HAND.format(setup=setup, knob=knob))
    assert "the script already accumulates gradients by hand" in action
    assert action.endswith(f"; set {knob} to 4 yourself (the codemod cannot: {reason})"), action


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        (
            'parser.add_argument("--grad_accum", type=int, default=1, choices=[1, 2])',
            "the option --grad_accum (line 3) allows choices=[1, 2], which does not hold 4",
        ),
        (
            'parser.add_argument("--grad_accum", action="store_const", const=8)',
            'the option --grad_accum (line 3) has action="store_const"',
        ),
    ],
)
def test_a_knob_no_value_of_the_user_s_can_set_is_refused(option: str, reason: str):
    new, problems, _ = _rewrite(f"{option}\nargs = parser.parse_args()", "args.grad_accum")
    assert new == ""
    (problem,) = problems
    assert "cannot add accumulation: the script already accumulates" in problem
    assert problem.endswith(f"the codemod cannot set it for you: {reason}"), problem


FUNCTION = """\
import torch


def train(model, loader, accum_steps=1):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, (x, y) in enumerate(loader):
        loss = (model(x) - y).pow(2).mean() / accum_steps
        loss.backward()
        if (step + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()


train(build(), loader{extra})
"""


def test_a_keyword_default_is_set_when_no_caller_passes_it():
    result = codemod_source(FUNCTION.format(extra=""), ACCUM, "train.py")
    assert result.changed and "def train(model, loader, accum_steps=4):" in result.new_source


@pytest.mark.parametrize("extra", [", accum_steps=8", ", 8", ", **options"])
def test_a_keyword_default_a_caller_may_pass_is_left_to_the_user(extra: str):
    assert _kept(FUNCTION.format(extra=extra)).endswith(
        "`accum_steps` has a default in train() (line 4), but the call at line 14 may pass its own)"
    )


def test_divisor_and_guard_reading_different_knobs_are_refused():
    source = BY_HAND.format(setup="accum_a = 1\naccum_b = 1", knob="accum_a").replace(
        "% accum_a", "% accum_b"
    )
    (problem,) = [str(p) for p in codemod_source(source, ACCUM, "train.py").problems]
    assert problem.endswith("it reads values defined apart (line 4 and line 3)")


ACCELERATE = """\
from accelerate import Accelerator

{setup}
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for batch in loader:
    with accelerator.accumulate(model):
        loss = model(**batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
"""


def test_an_accumulation_window_assigned_to_the_accelerator_is_its_own():
    setup = "accelerator = Accelerator()\naccelerator.gradient_accumulation_steps = batch // 16"
    action = _kept(ACCELERATE.format(setup=setup))
    assert "through Accelerate (accelerator.gradient_accumulation_steps = batch // 16" in action
    assert action.endswith("`batch // 16` is computed at line 4, not a literal)")


def test_a_window_one_accelerator_branch_lacks_is_refused_not_left_to_the_user():
    """The user's setting would reach one branch's Accelerator; the other needs our keyword:
    keeping one and editing the other is not one mechanism, so nothing is done."""
    setup = (
        "accelerator = (\n    Accelerator(gradient_accumulation_steps=batch // 16)\n"
        "    if tracking\n    else Accelerator()\n)"
    )
    result = codemod_source(ACCELERATE.format(setup=setup), ACCUM, "train.py")
    assert not result.changed and result.kept == [] and result.actions == []
    (problem,) = [str(p) for p in result.problems]
    assert problem.startswith("train.py:4:17: cannot add accumulation: the script already")
    assert problem.endswith(
        "the codemod cannot set it for you: `batch // 16` is computed at line 4, not a literal"
    )


def test_an_accumulation_by_hand_under_deepspeed_is_refused():
    setup = (
        'parser.add_argument("--accum", type=int, default=1)\nargs = parser.parse_args()\n'
        "accelerator = Accelerator(deepspeed_plugin=DeepSpeedPlugin(hf_ds_config='ds.json'))"
    )
    source = BY_HAND.format(setup=setup, knob="args.accum").replace(
        "loss.backward()", "accelerator.backward(loss)"
    )
    (problem,) = [str(p) for p in codemod_source(source, ACCUM, "train.py").problems]
    assert problem.endswith(
        "DeepSpeed (deepspeed_plugin at line 5) steps on its own accumulation, not on this guard"
    )


def test_the_older_fp16_flag_of_the_accelerator_is_refused():
    source = ACCELERATE.format(setup="accelerator = Accelerator(fp16=True)")
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    (problem,) = [str(p) for p in result.problems]
    assert problem.startswith("train.py:3:27: cannot add precision: Accelerator(...) already sets")


@pytest.mark.parametrize(
    ("code", "expected"),
    [("x = 4\nuse(x)", None), ("x = 2\nuse(x)", "4"), ("x = True\nuse(x)", "4")],
)
def test_a_value_is_set_unless_it_already_equals_the_wanted_one(code: str, expected: str | None):
    script = Script(cst.parse_module(code + "\n"))
    read = script.calls[-1].args[0].value
    swaps = set_knob(script, read, "4").swaps
    assert [script.module.code_for_node(v) for v in swaps.values()] == (
        [expected] if expected else []
    )


def test_a_knob_defined_in_terms_of_itself_is_refused():
    script = Script(cst.parse_module("class A:\n    def f(self):\n        self.k = self.k\n"))
    read = script.module.body[0].body.body[0].body.body[0].body[0].value  # type: ignore[attr-defined]
    with pytest.raises(CannotAct, match="defined in terms of itself"):
        set_knob(script, read, "4")


def test_accumulation_by_hand_in_another_form_is_refused_with_why():
    source = BY_HAND.format(setup="grad_accum = 1", knob="grad_accum").replace(
        "if (step + 1) % grad_accum == 0:", "if True:"
    )
    (problem,) = [str(p) for p in codemod_source(source, ACCUM, "train.py").problems]
    assert problem.startswith("train.py:6:43: cannot add accumulation: the script already")
    assert problem.endswith(
        "it composes only with the plain form (the loss divided by the window, the optimizer "
        "stepped every window)"
    )


def test_a_guard_stepping_after_the_first_micro_batch_is_noted():
    source = BY_HAND.format(setup="grad_accum = 1", knob="grad_accum").replace(
        "(step + 1) % grad_accum", "step % grad_accum"
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert result.changed and "grad_accum = 4" in (result.new_source or "")
    assert [str(n) for n in result.notes][1] == (
        "train.py:8:5: the script's own guard (line 8) steps when step % grad_accum == 0 with "
        "step counted from 0: each epoch's first window holds one micro-batch, not 4 (the "
        "script's own behaviour, kept)"
    )


CLOSURE = """\
import torch

grad_accum = 1


def main():
    grad_accum = 2
{rebind}
    def train(loader):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for step, (x, y) in enumerate(loader):
            loss = (model(x) - y).pow(2).mean() / grad_accum
            loss.backward()
            if (step + 1) % grad_accum == 0:
                optimizer.step()
                optimizer.zero_grad()

    train(loader)
"""


def test_a_closure_reads_its_enclosing_function_s_knob_not_the_module_s():
    result = codemod_source(CLOSURE.format(rebind=""), ACCUM, "train.py")
    assert result.changed, result.problems
    assert "grad_accum = 1\n" in (result.new_source or "")
    assert "    grad_accum = 4\n" in (result.new_source or "")


def test_a_knob_rebound_through_nonlocal_is_left_to_the_user():
    rebind = "\n    def halve():\n        nonlocal grad_accum\n        grad_accum //= 2\n"
    action = _kept(CLOSURE.format(rebind=rebind))
    assert action.endswith("`grad_accum` is rebound through `nonlocal` in halve() (line 9))")


def test_accumulation_in_another_form_names_a_knob_that_could_not_be_set_anyway():
    source = BY_HAND.format(setup="", knob="cfg.accum_iters(devices)").replace(
        "if (step + 1) % cfg.accum_iters(devices) == 0:", "if True:"
    )
    (problem,) = [str(p) for p in codemod_source(source, ACCUM, "train.py").problems]
    assert problem.endswith(
        "the codemod cannot set it for you: `cfg.accum_iters(devices)` is computed at line 6, "
        "not a literal"
    )


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (
            'parser.add_argument("--grad_accum", type=int, default=1)\n'
            "args = parser.parse_args()\ncfg = OmegaConf.load(args.config)",
            "`cfg.grad_accum` names an option, but `cfg` (line 5) is not what parse_args() returns",
        ),
        (
            'parser.add_argument(FLAG, dest="grad_accum", type=int, default=1)\n'
            "cfg = parser.parse_args()",
            "the option for `grad_accum` (line 3) is named at run time",
        ),
    ],
)
def test_an_option_read_through_something_else_is_left_to_the_user(setup: str, reason: str):
    action = _kept(BY_HAND.format(setup=setup, knob="cfg.grad_accum"))
    assert action.endswith(f"(the codemod cannot: {reason})"), action


def test_an_option_read_through_parse_known_args_or_a_parameter_is_set():
    setup = 'parser.add_argument("--grad_accum", type=int, default=1)\n'
    known = setup + "args, unknown = parser.parse_known_args()"
    assert "default=4" in _rewrite(known, "args.grad_accum")[0]
    source = (
        FUNCTION.format(extra="")
        .replace("accum_steps=1", "args")
        .replace("/ accum_steps", "/ args.grad_accum")
    )
    source = source.replace("% accum_steps", "% args.grad_accum").replace(
        "train(build(), loader)", setup + "train(build(), loader, parser.parse_args())"
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert result.changed and "default=4" in (result.new_source or ""), result.problems


FLAGGED = """\
import torch

{setup}
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step, (x, y) in enumerate(loader):
    is_accumulating = (step + 1) % {knob} != 0
    loss = (model(x) - y).pow(2).mean()
    (loss / {knob}).backward()
    if not is_accumulating:
        optimizer.step()
        optimizer.zero_grad()
"""


def test_a_step_guarded_by_a_flag_that_counts_windows_is_accumulation_by_hand():
    """litgpt's shape: the window is read through a flag, and the loss is divided by it."""
    result = codemod_source(FLAGGED.format(setup="accum = 1", knob="accum"), ACCUM, "train.py")
    assert result.problems == [] and "accum = 4\n" in (result.new_source or "")
    assert "% 4" not in (result.new_source or "")  # no second window on top
    computed = FLAGGED.format(setup="", knob="train.accum_iters(devices)")
    assert _kept(computed).endswith(
        "set train.accum_iters(devices) to 4 yourself (the codemod cannot: "
        "`train.accum_iters(devices)` is computed at line 6, not a literal)"
    )


def test_a_divided_loss_with_a_flag_that_counts_nothing_is_not_kept():
    source = FLAGGED.format(setup="accum = 1", knob="accum").replace(
        "is_accumulating = (step + 1) % accum != 0", "is_accumulating = step < warmup"
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert not result.changed and result.kept == []
    (problem,) = [str(p) for p in result.problems]
    assert "cannot add accumulation: the script already accumulates gradients by hand (loss " in (
        problem
    )


PRELOADED = """\
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for update in range(updates):
    batches = [next(iterator) for _ in range(window_of(update))]
    for x, y in batches:
        loss = (model(x) - y).pow(2).sum() / tokens
        loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""


def test_a_micro_step_loop_whose_window_has_no_name_is_kept():
    """Accelerate's autoregressive example preloads each window's batches (to normalise the
    loss by the window's tokens): a micro-step loop inside the loop that steps the optimizer
    is accumulation by its structure, so nothing is added on top even though the codemod
    cannot name the window, and the user is told to set it."""
    action = _kept(PRELOADED)
    assert action.startswith("train.py:6:5: keeping the script's own accumulation: ")
    assert "a micro-step loop at line 6" in action and "set its window to 4 yourself" in action
