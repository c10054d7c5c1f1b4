"""Where the codemod cannot act it says why and where, and changes nothing; the command's exits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen.check import check_source
from freezegen.cli import app
from freezegen.codemod import CodemodOptions, codemod_source, options_from_spec
from freezegen.codemod.options import LoraOptions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codemod"
ACCUM = CodemodOptions(grad_accum_steps=4)

WHILE_LOOP = """\
import torch

while True:
    loss = model(x)
    loss.backward()
    optimizer.step()
"""
UNSIZED = """\
import itertools

import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in itertools.islice(stream(), 100):
    loss = model(x)
    loss.backward()
    optimizer.step()
"""


def _problems(source: str, options: CodemodOptions) -> list[str]:
    result = codemod_source(source, options, "train.py")
    assert result.new_source is None and not result.changed
    return [str(p) for p in result.problems]


def test_no_backward_is_reported_and_nothing_changes():
    assert _problems("import torch\nprint(torch.ones(1))\n", ACCUM) == [
        "train.py: no loss.backward() call found"
    ]


def test_step_without_a_loop_cannot_accumulate():
    source = (FIXTURES / "trainer_class.in.py").read_text(encoding="utf-8")
    (problem,) = _problems(source, CodemodOptions(grad_accum_steps=2, freeze=("embed.*",)))
    # fit() calls train_step() from a list comprehension: no loop whose passes can be counted
    assert problem.startswith(
        "train.py:44:17: cannot add accumulation: train_step() is called here, not once per "
        "pass of a `for` loop over the batches"
    )


def test_while_loop_over_the_same_data_and_unsized_iterable_are_explained():
    assert _problems(WHILE_LOOP, ACCUM)[0].startswith(
        "train.py:3:1: cannot add accumulation: the loop `while True:` draws no new batch"
    )
    (problem,) = _problems(UNSIZED, ACCUM)
    assert problem.startswith("train.py:6:10: cannot add accumulation: cannot tell how many")


def test_every_problem_is_reported_at_once():
    problems = _problems(WHILE_LOOP, CodemodOptions(grad_accum_steps=2, freeze=("x",)))
    assert len(problems) == 2
    # the freeze's reason names the line where the unknown optimizer is stepped
    assert any(
        p.startswith(
            "train.py:6:5: cannot add freeze: `optimizer` is stepped here but is not "
            "built in this file"
        )
        for p in problems
    )


def test_plain_model_needs_a_module_path_for_checkpointing():
    source = (FIXTURES / "flat_loop.in.py").read_text(encoding="utf-8")
    (problem,) = _problems(source, CodemodOptions(activation_checkpointing=""))
    assert "torch.nn.Sequential(...)) is not a Hugging Face model" in problem


def test_syntax_error_is_data():
    (problem,) = _problems("loss.backward(\n", ACCUM)
    assert problem.startswith("train.py:") and "syntax error" in problem


@pytest.mark.parametrize("case", sorted(p.name for p in FIXTURES.glob("*.out.py")))
def test_outputs_pass_freezegen_check(case: str):
    result = check_source((FIXTURES / case).read_text(encoding="utf-8"), case)
    assert result.diagnostics == []


def test_options_from_spec(tmp_path: Path):
    spec = tmp_path / "run.freezegen.yaml"
    spec.write_text(
        "version: 1\n"
        "model: {preset: gpt2}\n"
        "freeze: {embeddings: true, layers: {first: 2}, except: ['*.bias']}\n"
        "precision: fp16\n"
        "batch: {micro_batch_size: 4, grad_accum_steps: 8, seq_len: 64}\n"
        "activation_checkpointing: true\n",
        encoding="utf-8",
    )
    options = options_from_spec(spec)
    assert options.freeze[:2] == ("transformer.wte.weight", "transformer.wpe.weight")
    assert "transformer.h.0.attn.c_attn.weight" in options.freeze  # bias excepted: no block glob
    assert not any(g.endswith(".bias") for g in options.freeze)
    assert (options.precision, options.grad_accum_steps) == ("fp16", 8)
    assert options.activation_checkpointing == "" and options.trainable_only_optimizer


def test_cli_diff_check_write(tmp_path: Path):
    target = tmp_path / "train.py"
    target.write_text((FIXTURES / "flat_loop.in.py").read_text(encoding="utf-8"), encoding="utf-8")
    before = target.read_text(encoding="utf-8")
    runner = CliRunner()
    shown = runner.invoke(app, ["codemod", str(target), "--grad-accum-steps", "2"])
    assert shown.exit_code == 0 and "+++ b/" in shown.output
    checked = runner.invoke(app, ["codemod", str(target), "--grad-accum-steps", "2", "--check"])
    assert checked.exit_code == 1 and target.read_text(encoding="utf-8") == before
    written = runner.invoke(app, ["codemod", str(target), "--grad-accum-steps", "2", "--write"])
    assert written.exit_code == 0 and target.read_text(encoding="utf-8") != before
    again = runner.invoke(app, ["codemod", str(target), "--grad-accum-steps", "2", "--check"])
    assert again.exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--precision", "fp8"],
        ["--grad-accum-steps", "0"],
        ["--write", "--check", "--freeze", "x"],
    ],
)
def test_cli_usage_errors(tmp_path: Path, args: list[str]):
    target = tmp_path / "train.py"
    target.write_text("import torch\n", encoding="utf-8")
    assert CliRunner().invoke(app, ["codemod", str(target), *args]).exit_code == 2


def test_cli_folder_skips_files_without_a_training_step(tmp_path: Path):
    (tmp_path / "util.py").write_text("x = 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["codemod", str(tmp_path), "--grad-accum-steps", "2"])
    assert result.exit_code == 0, result.output


ACCELERATOR_IF_ELSE = """\
import torch
from accelerate import Accelerator

if args.with_tracking:
    accelerator = Accelerator(log_with="all", project_dir=args.output_dir)
else:
    accelerator = Accelerator()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for batch in loader:
    loss = model(**batch).loss
    accelerator.backward(loss)
    optimizer.step()
    optimizer.zero_grad()
"""


def test_every_branch_building_the_accelerator_gets_the_same_edit():
    result = codemod_source(
        ACCELERATOR_IF_ELSE, CodemodOptions(precision="bf16", grad_accum_steps=2), "train.py"
    )
    assert result.changed, result.problems
    new = result.new_source or ""
    assert new.count('mixed_precision="bf16", gradient_accumulation_steps=2)') == 2
    assert new.count("with accelerator.accumulate(model):") == 1


def test_accelerator_with_another_literal_precision_in_one_branch_gets_it_set():
    source = ACCELERATOR_IF_ELSE.replace("Accelerator()", 'Accelerator(mixed_precision="fp16")')
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.changed, result.problems
    new = result.new_source or ""
    assert new.count('mixed_precision="bf16"') == 2 and "fp16" not in new
    assert "autocast" not in new  # Accelerate runs its own
    (note,) = (str(n) for n in result.notes)
    assert note.startswith('train.py:7:47: set the script\'s own mixed_precision to "bf16"')


def test_accelerator_with_a_computed_precision_is_refused():
    source = ACCELERATOR_IF_ELSE.replace(
        "Accelerator()", "Accelerator(mixed_precision=pick_precision())"
    )
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:7:31: cannot add precision: Accelerator(...) already sets")
    assert problem.endswith("`pick_precision()` is computed at line 7, not a literal")


def test_autocast_whose_dtype_is_decided_at_run_time_is_left_to_the_user():
    source = (FIXTURES / "nanogpt.in.py").read_text(encoding="utf-8")
    result = codemod_source(source, CodemodOptions(precision="fp16"), "train.py")
    assert result.problems == [] and result.kept == ["precision"]
    assert result.applied == ["torch.amp (FG501)"]  # the only change: no autocast of ours
    assert [str(a) for a in result.actions] == [
        "train.py:79:9: keeping the script's own precision: the script already runs its forward "
        "pass under autocast (line 79) with dtype=ptdtype, chosen at run time; set ptdtype to "
        "torch.float16 yourself"
    ]


def test_autocast_with_no_dtype_on_an_unknown_device_is_refused():
    """Without a dtype to name, there is no setting to hand the user: the device decides."""
    source = (FIXTURES / "nanogpt.in.py").read_text(encoding="utf-8")
    source = source.replace(", dtype=ptdtype)", ")")
    assert "dtype=ptdtype" not in source
    (problem,) = _problems(source, CodemodOptions(precision="fp16"))
    assert problem.startswith("train.py:79:9: cannot add precision: the script already runs")
    assert "dtype not known before run time" in problem


DEVICE_CASES = """\
import torch

model = build()
{setup}
optimizer = torch.optim.SGD({params}, lr=0.1)
for x in loader:
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(
    ("setup", "params", "expected"),
    [
        (
            'device_type = "cuda" if torch.cuda.is_available() else "cpu"',
            "model.parameters()",
            "autocast(device_type,",
        ),
        (
            "device_type = torch.device('cuda')",
            "model.parameters()",
            "autocast(device_type.type,",
        ),
        (
            "if cuda:\n    device_type = 'cuda'",
            "model.parameters()",
            "autocast(next(model.parameters()).device.type,",
        ),
        ("device = accelerator.device", "model.parameters()", "autocast(device.type,"),
        ("device = 'cuda:0'", "model.parameters()", "autocast(torch.device(device).type,"),
        (
            "device = 'cuda'\ndevice = torch.device(device)",
            "model.parameters()",
            "autocast(next(model.parameters()).device.type,",
        ),
        ("model.cuda()", "params()", 'autocast("cuda",'),
        ("", "params()", 'autocast("cpu",'),
    ],
)
def test_autocast_device_is_a_string_on_every_path(setup: str, params: str, expected: str):
    source = DEVICE_CASES.format(setup=setup, params=params)
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.changed, result.problems
    assert expected in (result.new_source or "")


def test_autocast_device_that_cannot_be_told_is_refused():
    setup = (
        "device = 'cuda' if torch.cuda.is_available() else 'cpu'\nif cpu_only:\n    device = 'cpu'"
    )
    source = DEVICE_CASES.format(setup=setup, params="params()").replace("device =", "dev =")
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:9:5: cannot add precision: cannot tell which device")


def test_grad_scaler_lives_where_the_optimizer_is_built():
    """Not inside the per-epoch function: there it would restart from its initial scale."""
    source = (FIXTURES / "train_one_epoch.in.py").read_text(encoding="utf-8")
    result = codemod_source(source, CodemodOptions(precision="fp16"), "train.py")
    new = result.new_source or ""
    epoch_function, main = new.split("def main():")
    assert "GradScaler(" not in epoch_function and "*, scaler):" in epoch_function
    assert "    scaler = torch.amp.GradScaler(" in main
    assert "train_one_epoch(model, loader, optimizer, scaler=scaler)" in main


def test_grad_scaler_that_cannot_be_handed_over_is_refused():
    source = (FIXTURES / "train_one_epoch.in.py").read_text(encoding="utf-8")
    source = source.replace(
        "    for _ in range(epochs):\n", "    run(train_one_epoch)\n    for _ in range(epochs):\n"
    )
    (problem,) = _problems(source, CodemodOptions(precision="fp16"))
    assert problem.startswith("train.py:23:1: cannot add precision: the training step is in a")
    assert "`train_one_epoch` is not only called by name in this file" in problem


RANGE_LOOP = """\
import torch

optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for it in range(100):
    {fetch}
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(
    "fetch",
    [
        "x = get_batch('train')",
        "x = data[it * 8 : it * 8 + 8]",
        "x = torch.randint(0, vocab_size, (8, 64))",  # FSDP2's example: synthetic tokens
    ],
)
def test_range_loop_drawing_a_batch_each_pass_accumulates(fetch: str):
    result = codemod_source(RANGE_LOOP.format(fetch=fetch), ACCUM, "train.py")
    assert result.changed, result.problems
    assert "if (it + 1) % 4 == 0 or it + 1 == 100:" in (result.new_source or "")


def test_a_random_draw_under_autocast_still_makes_a_micro_step():
    """Precision runs first and puts the draw and the forward pass in one autocast block: the
    loop is still one over micro-batches (it was refused as an internal error)."""
    source = RANGE_LOOP.format(fetch="x = torch.randint(0, vocab_size, (8, 64))")
    result = codemod_source(source, CodemodOptions(grad_accum_steps=4, precision="bf16"))
    assert result.changed, result.problems
    assert "torch.amp.autocast(" in (result.new_source or "")
    assert "if (it + 1) % 4 == 0 or it + 1 == 100:" in (result.new_source or "")


@pytest.mark.parametrize("fetch", ["x = features", "noise = torch.randn(8, 4)\n    x = features"])
def test_range_loop_over_the_same_data_is_not_a_micro_step_loop(fetch: str):
    """A random draw the loss does not read (noise for something else) is no new batch."""
    (problem,) = _problems(RANGE_LOOP.format(fetch=fetch), ACCUM)
    assert problem.startswith("train.py:4:1: cannot add accumulation: the loop `for it in range")


def test_gradient_step_between_forward_and_loss_is_refused():
    source = RANGE_LOOP.format(fetch="x = get_batch()").replace(
        "    loss = model(x).sum()\n",
        "    out = model(x)\n    optimizer.step()\n    loss = out.sum()\n",
    )
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:7:5: cannot add precision: this statement steps or clips")
    assert "feeds the loss (line 5) and the loss (line 8)" in problem


def test_zeroing_between_forward_and_loss_stays_out_of_autocast():
    source = RANGE_LOOP.format(fetch="x = get_batch()").replace(
        "    loss = model(x).sum()\n",
        "    out = model(x)\n    optimizer.zero_grad()\n    loss = out.sum()\n",
    )
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.problems == []
    assert (
        ", dtype=torch.bfloat16):\n        x = get_batch()\n        out = model(x)\n"
        "        loss = out.sum()\n    optimizer.zero_grad()\n    loss.backward()\n"
    ) in (result.new_source or "")


NO_TRAINER = """\
import torch
from accelerate import Accelerator

accelerator_log_kwargs = {}
if args.with_tracking:
    accelerator_log_kwargs["log_with"] = args.report_to
    accelerator_log_kwargs["project_dir"] = args.output_dir
accelerator = Accelerator(
    gradient_accumulation_steps=args.gradient_accumulation_steps, **accelerator_log_kwargs
)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for step, batch in enumerate(train_dataloader):
    with accelerator.accumulate(model):
        loss = model(**batch).loss
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
"""


def test_no_trainer_script_keeps_its_accumulation_and_gets_precision():
    kept = codemod_source(NO_TRAINER, ACCUM, "train.py")
    assert kept.problems == [] and not kept.changed
    (action,) = [str(a) for a in kept.actions]
    assert action.startswith("train.py:9:5: keeping the script's own accumulation: the script")
    assert "; set args.gradient_accumulation_steps to 4 yourself (the codemod cannot: " in action
    result = codemod_source(NO_TRAINER, CodemodOptions(precision="bf16"), "train.py")
    new = result.new_source or ""
    assert new.count('mixed_precision="bf16"') == 1 and "**accelerator_log_kwargs" in new


def test_mapping_that_may_set_the_keyword_is_refused():
    source = NO_TRAINER.replace('["project_dir"]', "[key]")
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:9:67: cannot add precision: cannot tell whether")


def test_attribute_of_the_same_name_does_not_stop_the_hand_over():
    """``model.train()`` is no reference to a step function called ``train``."""
    source = (FIXTURES / "train_one_epoch.in.py").read_text(encoding="utf-8")
    source = source.replace("train_one_epoch(", "train(")
    result = codemod_source(source, CodemodOptions(precision="fp16"), "train.py")
    assert "train(model, loader, optimizer, scaler=scaler)" in (result.new_source or "")


@pytest.mark.parametrize("window", ["args.grad_acc", "cfg.acc_steps", "iters_to_accumulate"])
def test_loss_divided_by_a_window_is_accumulation_by_hand(window: str):
    source = RANGE_LOOP.format(fetch="x = get_batch()").replace(
        "    loss.backward()\n", f"    (loss / {window}).backward()\n"
    )
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith("train.py:7:13: cannot add accumulation: the script already")
    assert f"loss divided by {window} at line 7" in problem


FREEZE_SCRIPT = """\
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(2, 4)]:
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(("glob", "frozen"), [("0.*", ["0.weight", "0.bias"]), ("encoder.*", None)])
def test_a_freeze_glob_that_matches_nothing_stops_the_script(glob, frozen, tmp_path):
    # Parameter names are known only at run time: a glob that matches none of them must not
    # let the script train the whole model as if it had frozen something.
    new = codemod_source(FREEZE_SCRIPT, CodemodOptions(freeze=(glob,))).new_source
    assert new is not None
    script = tmp_path / "train.py"
    script.write_text(
        new + "print([n for n, p in model.named_parameters() if not p.requires_grad])\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    if frozen is None:
        assert run.returncode == 1
        assert f"ValueError: --freeze {glob} matched no parameter of model" in run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == repr(frozen)


@pytest.mark.parametrize("fixture", ["nested_loops", "hf_accelerate"])
def test_accumulation_says_a_scheduler_now_steps_once_per_window(fixture):
    # The codemod cannot know whether the schedule's length counts batches or updates; when it
    # counts batches the schedule would only get a quarter of the way, so the user is told.
    source = (FIXTURES / f"{fixture}.in.py").read_text()
    result = codemod_source(source, ACCUM, f"{fixture}.py")
    assert result.changed
    notes = [str(n) for n in result.notes if "steps once per 4 micro-batches" in n.text]
    assert len(notes) == 1 and "divide it by 4" in notes[0], result.notes
    line = int(notes[0].split(":")[1])
    assert "sched" in source.splitlines()[line - 1] and ".step()" in source.splitlines()[line - 1]


PREPARED_FIRST = """\
import torch
from accelerate import Accelerator

accelerator = Accelerator()
model = torch.nn.Linear(4, 1)
model = accelerator.prepare(model)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(2, 4)]:
    loss = model(x).sum()
    accelerator.backward(loss)
    optimizer.step()
"""


def test_a_freeze_goes_above_accelerate_preparing_the_model():
    # Distributed, prepare wraps the model in DDP or FSDP: freezing afterwards breaks reduction,
    # so the freeze goes above prepare, on the model it is handed.
    result = codemod_source(PREPARED_FIRST, CodemodOptions(freeze=("weight",)), "train.py")
    assert result.problems == [] and result.new_source is not None
    lines = result.new_source.splitlines()
    freeze = lines.index("for param_name, param in model.named_parameters():")
    assert lines.index("model = torch.nn.Linear(4, 1)") < freeze
    assert freeze < lines.index("model = accelerator.prepare(model)")
    later = PREPARED_FIRST.replace("model = accelerator.prepare(model)\n", "").replace(
        "lr=0.1)\n", "lr=0.1)\nmodel, optimizer = accelerator.prepare(model, optimizer)\n"
    )
    assert codemod_source(later, CodemodOptions(freeze=("weight",))).changed


WRAPPED_LATER = """\
import torch
from torch.nn.parallel import DistributedDataParallel as DDP


class Trainer:
    def __init__(self, model, optimizer):
        self.model = DDP(model)
        self.optimizer = optimizer


def build():
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, optimizer


def train(model, optimizer):
    for x in [torch.randn(2, 4)]:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
"""


def test_a_wrap_in_another_function_does_not_block_the_freeze():
    # Trainer.__init__ sits above build() in the file but runs after it: the freeze placed
    # above build()'s optimizer comes before the wrap, as it must.
    assert codemod_source(WRAPPED_LATER, CodemodOptions(freeze=("weight",))).changed


@pytest.mark.parametrize(
    ("iterable", "unsized"),
    [
        ("tqdm(stream())", "stream()"),  # a progress bar over something unsized
        ("range(0, next_size(), 2)", "range(0, next_size(), 2)"),  # would call next_size() again
    ],
)
def test_windows_need_a_length_that_can_be_read_again(iterable: str, unsized: str):
    source = (
        UNSIZED.replace("itertools.islice(stream(), 100)", iterable)
        .replace("import itertools\n", "from tqdm import tqdm\n")
        .replace("model(x)", "model(data[x])")
    )
    (problem,) = _problems(source, ACCUM)
    assert f"cannot tell how many batches `{unsized}` yields" in problem


def test_fp16_autocast_is_not_retargeted_when_the_script_uses_fp16_elsewhere():
    source = (FIXTURES / "autocast_fp16_literal.in.py").read_text(encoding="utf-8")
    assert not codemod_source(source, CodemodOptions(precision="bf16"), "train.py").problems
    source = source.replace(
        "model = nn.Sequential(", "model = nn.Sequential(nn.Identity().half(), "
    )
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:23:9: cannot add precision: the script already runs")
    assert "(in fp16, line 23)" in problem


def test_loss_held_on_an_attribute_is_found_with_its_forward_pass():
    """minGPT's `logits, self.loss = model(x, y)`: the forward assignment's attribute target."""
    source = (
        "import torch\n\n\n"
        "class Trainer:\n"
        "    def run(self, model, loader):\n"
        "        self.optimizer = torch.optim.AdamW(model.parameters())\n"
        "        for x, y in loader:\n"
        "            logits, self.loss = model(x, y)\n"
        "            model.zero_grad()\n"
        "            self.loss.backward()\n"
        "            self.optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.problems == [] and result.new_source is not None
    assert (
        "            with torch.amp.autocast(next(model.parameters()).device.type, "
        "dtype=torch.bfloat16):\n"
        "                logits, self.loss = model(x, y)\n"
    ) in result.new_source


def test_optimizer_built_on_two_paths_keeps_its_parameters_or_refuses():
    """A freeze goes above the `if` that builds the optimizer either way; handing only the
    trainable parameters to one branch would leave the other's optimizer with all of them."""
    source = (
        "import torch\n\n"
        "if fused:\n"
        "    optimizer = torch.optim.AdamW(model.parameters(), fused=True)\n"
        "else:\n"
        "    optimizer = torch.optim.SGD(model.parameters())\n"
        "for x in loader:\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    (problem,) = _problems(source, CodemodOptions(trainable_only_optimizer=True))
    assert problem.startswith("train.py:6:17: cannot add trainable-only optimizer: the optimizer")
    result = codemod_source(source, CodemodOptions(freeze=("0.*",)), "train.py")
    assert result.new_source is not None
    assert result.new_source.index("frozen = 0") < result.new_source.index("if fused:")


def test_optimizer_from_a_helper_of_the_same_file_trains_the_argument():
    """`optimizer = create_optimizer(cfg, net)`: the helper returns an optimizer class over its
    `model` parameter's parameters, so the freeze goes above the call, on `net`."""
    source = (
        "import torch\n\n\n"
        "def create_optimizer(cfg, model):\n"
        "    groups = [{'params': [p for n, p in model.named_parameters()]}]\n"
        "    return torch.optim.AdamW(groups, lr=cfg.lr)\n\n\n"
        "optimizer = create_optimizer(cfg, net)\n"
        "for x in loader:\n"
        "    loss = net(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("0.*",)), "train.py")
    assert result.problems == [] and result.new_source is not None
    new = result.new_source
    assert "for param_name, param in net.named_parameters():" in new
    assert new.index("frozen = 0") < new.index("optimizer = create_optimizer(cfg, net)")


def test_parameter_list_named_like_an_optimizer_is_not_one():
    """`optimizer_params = list(model.parameters())` names the optimizer's input, not it."""
    source = (
        "import torch\n\n"
        "optimizer_params = list(model.parameters())\n"
        "optimizer = torch.optim.SGD(optimizer_params, lr=0.1)\n"
        "for x in loader:\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("0.*",)), "train.py")
    assert result.problems == [] and result.new_source is not None
    assert result.new_source.index("frozen = 0") < result.new_source.index("optimizer_params =")


def test_step_method_whose_caller_zeroes_the_gradients_is_refused():
    """A zero_grad in fit's loop would wipe each window's gradients before it is complete."""
    source = (
        "import torch\n\n\n"
        "class Trainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n"
        "    def step(self, x):\n"
        "        loss = self.model(x)\n"
        "        loss.backward()\n"
        "        self.optimizer.step()\n\n"
        "    def fit(self, loader):\n"
        "        for x in loader:\n"
        "            self.optimizer.zero_grad()\n"
        "            self.step(x)\n"
    )
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith(
        "train.py:16:13: cannot add accumulation: the loop that calls step() steps, clips or "
        "zeroes gradients itself here"
    )


def test_step_function_skipped_by_continue_is_refused():
    """Skipped calls would leave the epoch's last window short of the loader's length."""
    source = (
        "import torch\n\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n\n"
        "def train_step(model, x, optimizer):\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    optimizer.zero_grad()\n\n\n"
        "for x in loader:\n"
        "    if x is None:\n"
        "        continue\n"
        "    train_step(model, x, optimizer)\n"
    )
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith("train.py:15:9: cannot add accumulation: this `continue` skips")


def test_an_environment_step_in_the_caller_loop_is_no_update():
    """`env.step(action)` next to the call is bookkeeping of the caller, not an optimizer step."""
    source = (
        "import torch\n\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n\n"
        "def train_step(model, x, optimizer):\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    optimizer.zero_grad()\n\n\n"
        "for x in loader:\n"
        "    env.step(x)\n"
        "    train_step(model, x, optimizer)\n"
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert result.problems == [] and result.new_source is not None
    assert "train_step(model, x, optimizer, micro_step=step, micro_steps=len(loader))" in (
        result.new_source
    )


def test_model_rebuilt_inside_the_optimizer_branches_is_refused():
    """Setup above the `if` would freeze the model the branches then replace."""
    source = (
        "import torch\n\n"
        "if small:\n"
        "    model = torch.nn.Linear(4, 1)\n"
        "    optimizer = torch.optim.SGD(model.parameters())\n"
        "else:\n"
        "    model = torch.nn.Linear(8, 1)\n"
        "    optimizer = torch.optim.AdamW(model.parameters())\n"
        "for x in loader:\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    (problem,) = _problems(source, CodemodOptions(freeze=("0.*",)))
    assert problem.startswith("train.py:4:5: cannot add freeze: `model` is built here, inside")


def test_optimizer_on_an_attribute_built_on_two_paths_gets_one_freeze_above():
    source = (
        "import torch\n\n\n"
        "class Trainer:\n"
        "    def __init__(self, model, fused):\n"
        "        self.model = model\n"
        "        if fused:\n"
        "            self.optimizer = torch.optim.AdamW(self.model.parameters(), fused=True)\n"
        "        else:\n"
        "            self.optimizer = torch.optim.SGD(self.model.parameters())\n\n"
        "    def fit(self, loader):\n"
        "        for x in loader:\n"
        "            loss = self.model(x)\n"
        "            loss.backward()\n"
        "            self.optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("0.*",)), "train.py")
    assert result.problems == [] and result.new_source is not None
    assert result.new_source.index("frozen = 0") < result.new_source.index("if fused:")


def test_step_function_returning_before_its_backward_is_refused():
    source = (
        "import torch\n\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n\n"
        "def train_step(model, x, optimizer):\n"
        "    if x is None:\n"
        "        return None\n"
        "    loss = model(x)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n\n\n"
        "for x in loader:\n"
        "    train_step(model, x, optimizer)\n"
    )
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith("train.py:8:9: cannot add accumulation: train_step() may return here")


REBOUND = """\
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.Adam(model.parameters(), 0.01)
optimizer = Wrapper(model.parameters(), opt=optimizer)
for x, y in loader:
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


def test_freeze_goes_above_the_first_of_two_constructions_in_a_row():
    # the Adam built first already holds every parameter: freezing between the two would
    # leave it built before the freeze (found on Fabric's meta_learning example)
    new = codemod_source(REBOUND, CodemodOptions(freeze=("0.*",)), "train.py").new_source
    assert new is not None
    assert new.index("requires_grad_(False)") < new.index("torch.optim.Adam(")
    with_wrapper_only = REBOUND.replace(
        "optimizer = torch.optim.Adam(model.parameters(), 0.01)\n", ""
    )
    new = codemod_source(with_wrapper_only, CodemodOptions(freeze=("0.*",)), "train.py").new_source
    assert new is not None and new.index("requires_grad_(False)") < new.index("Wrapper(")


@pytest.mark.parametrize(
    ("setup", "what"),
    [
        ("fully_shard(model, mp_policy=MixedPrecisionPolicy(param_dtype=torch.float16))", "FSDP2"),
        ("torch.set_default_dtype(torch.bfloat16)", "a default dtype"),
        ("model.double()", "the model's own dtype (model.double(): float64)"),
        ("model.to(torch.float16)", "the model's own dtype (model.to(torch.float16))"),
    ],
)
def test_precision_set_without_autocast_is_not_stacked_on(setup: str, what: str):
    source = (
        "import torch\n"
        "from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard\n"
        "model = torch.nn.Linear(4, 1)\n"
        f"{setup}\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:4:")
    assert f"already sets its precision here with {what}" in problem


@pytest.mark.parametrize(
    ("dtype", "precision"),
    [
        ("dtype = torch.float32", "bf16"),  # written in the file: set it there
        ("dtype = get_dtype(torch.float32)", "bf16"),  # a dtype named in the file
        ("dtype = get_dtype(cfg.dtype)", "fp16"),  # pure fp16 has no loss scaling
    ],
)
def test_a_default_dtype_is_kept_only_when_read_at_run_time_for_bf16(dtype: str, precision: str):
    # the run-time bf16 case is the fixture run_time_default_dtype.kept.py
    source = (
        "import torch\n"
        f"{dtype}\n"
        "torch.set_default_dtype(dtype)\n"
        "model = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    (problem,) = _problems(source, CodemodOptions(precision=precision))
    assert problem.startswith("train.py:3:")
    assert "already sets its precision here with a default dtype" in problem


FSDP2_POLICY = """\
import torch
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

model = torch.nn.Linear(4, 1)
kwargs = {{}}
{policy}
fully_shard(model, **kwargs)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


def test_an_fsdp_policy_in_the_wanted_dtype_is_the_precision_asked_for():
    policy = 'kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16)'
    result = codemod_source(FSDP2_POLICY.format(policy=policy), CodemodOptions(precision="bf16"))
    assert result.problems == [] and result.actions == [] and not result.changed


def test_an_fsdp_policy_behind_a_switch_is_left_to_the_user():
    policy = (
        "if args.mixed_precision:\n"
        '    kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16)'
    )
    source = FSDP2_POLICY.format(policy=policy)
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.problems == [] and not result.changed
    assert [str(a) for a in result.actions] == [
        "train.py:7:27: keeping the script's own precision: the script already sets its "
        "precision with FSDP2's mixed precision (MixedPrecisionPolicy(param_dtype=...)) in "
        "bfloat16, when `args.mixed_precision` is true (line 6); set args.mixed_precision to "
        "True yourself"
    ]
    (problem,) = _problems(source, CodemodOptions(precision="fp16"))  # the policy is bf16
    assert "already sets its precision here with FSDP2's mixed precision" in problem


POLICY_GRADIENT = """\
import torch

policy = torch.nn.Linear(4, 2)
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
saved = []


def act():
    saved.append(policy(torch.randn(4)).log_softmax(-1)[:1])


for episode in range(10):
    for t in range(5):
        act()
    policy_loss = torch.cat(saved).sum()
    optimizer.zero_grad()
    policy_loss.backward()
    optimizer.step()
    saved.clear()
"""


def test_autocast_is_not_put_where_no_forward_pass_runs():
    # the policy ran while the episode was played; autocast around the sum would do nothing
    (problem,) = _problems(POLICY_GRADIENT, CodemodOptions(precision="bf16"))
    assert problem.startswith("train.py:15:5: cannot add precision: no statement that computes")
    seen = codemod_source(POLICY_GRADIENT, CodemodOptions(), explain=True).seen
    forward = next(s for s in seen if s.what == "forward")
    assert (forward.line, forward.text[:40]) == (15, "not found: no statement that computes th")


HANDED_A_GPU = """\
import torch


def train(model, rank, loader, optimizer):
    for batch in loader:
        batch = batch.to(rank)
        loss = model(batch).sum()
        loss.backward()
        optimizer.step()
"""


def test_autocast_device_is_not_guessed_as_cpu_when_tensors_move():
    # nothing says cuda, but the batch goes to a GPU by its index: "cpu" would make autocast
    # a silent no-op (found on pytorch/examples' FSDP train_utils.py)
    (problem,) = _problems(HANDED_A_GPU, CodemodOptions(precision="bf16"))
    assert "cannot add precision: cannot tell which device the model runs on" in problem
    new = codemod_source(
        HANDED_A_GPU.replace("batch = batch.to(rank)", "pass"), CodemodOptions(precision="bf16")
    ).new_source
    assert new is not None and 'autocast("cpu",' in new


@pytest.mark.parametrize(
    "build",
    [
        "from peft import get_peft_model\nnet = get_peft_model(model, config)",
        "class Head(torch.nn.Module):\n    def __init__(self, body):\n        super().__init__()\n"
        "        self.body = body\n\n\nnet = Head(model)",
        "net = torch.nn.Sequential(model, torch.nn.ReLU())",
    ],
)
def test_a_model_built_around_another_by_a_known_library_or_this_file_is_frozen(build: str):
    source = (
        "import torch\n"
        "model = torch.nn.Sequential(torch.nn.Linear(4, 4))\n"
        f"{build}\n"
        "optimizer = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = torch.nn.functional.mse_loss(net(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("*.0.*",)), "train.py")
    assert result.problems == [] and "net.named_parameters()" in (result.new_source or "")


def test_a_config_handed_to_a_model_class_is_no_wrapped_model():
    """nanoGPT: GPT(gptconf) builds the model from a config object, it wraps no model."""
    source = (
        "import torch\nfrom model import GPT, GPTConfig\n"
        "gptconf = GPTConfig(n_layer=2)\nmodel = GPT(gptconf)\nmodel.to('cpu')\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = model(x, y)\n    loss.backward()\n    optimizer.step()\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("*.0.*",)), "train.py")
    assert result.problems == [] and "model.named_parameters()" in (result.new_source or "")


@pytest.mark.parametrize(
    "reader",
    [
        "for p in model.parameters():\n    if p.grad is not None:\n        p.data.add_(p.grad)",
        "grads = [p.grad for p in model.parameters() if p.requires_grad]",
    ],
)
def test_a_read_of_gradients_that_skips_the_missing_ones_does_not_stop_the_freeze(reader: str):
    source = (
        "import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 4))\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n    optimizer.step()\n" + reader + "\n"
    )
    result = codemod_source(source, CodemodOptions(freeze=("0.*",)), "train.py")
    assert result.problems == [] and "requires_grad_(False)" in (result.new_source or "")


def test_a_dict_of_every_parameter_s_gradient_stops_the_freeze():
    """llm.c writes {name: param.grad.cpu() for name, param in model.named_parameters()}."""
    source = (
        "import torch\nmodel = torch.nn.Sequential(torch.nn.Linear(4, 4))\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n    optimizer.step()\n"
        "grads = {n: param.grad.cpu() for n, param in model.named_parameters()}\n"
    )
    (problem,) = _problems(source, CodemodOptions(freeze=("0.*",)))
    assert problem.startswith("train.py:8:9: cannot add freeze: this reads `param.grad` of every")


@pytest.mark.parametrize(
    ("exit_", "refused"),
    [
        ("    if x is None:\n        break\n", True),  # above the step: a window unstepped
        ("", False),
    ],
)
def test_a_break_above_the_step_of_a_for_loop_is_refused(exit_: str, refused: bool):
    source = (
        "import torch\nmodel = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x, y in loader:\n" + exit_ + "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n    optimizer.step()\n    optimizer.zero_grad()\n"
        "    if args.dry_run:\n        break\n"
    )
    result = codemod_source(source, ACCUM, "train.py")
    if refused:
        (problem,) = [str(p) for p in result.problems]
        assert problem.startswith("train.py:6:9: cannot add accumulation: this `break` can end")
    else:  # a break below the step (pytorch/examples' --dry-run) keeps the windows whole
        assert result.problems == [] and result.changed


@pytest.mark.parametrize(
    ("loop", "reason"),
    [
        (
            "for batch in loader:\n    if batch is None:\n        continue\n",
            "train.py:6:9: cannot add accumulation: this `continue` can end a pass of the loop",
        ),
        (
            "for epoch in range(10):\n    batch = features\n",
            "train.py:4:1: cannot add accumulation: the loop `for epoch in range(10)` reuses",
        ),
    ],
)
def test_accelerate_accumulation_added_by_the_codemod_keeps_its_windows_whole(
    loop: str, reason: str
):
    """accumulate() counts its own calls, so the codemod's wrap needs no length, but a pass
    ending above the step leaves a window unstepped, and a full-batch loop has no windows."""
    source = (
        "from accelerate import Accelerator\naccelerator = Accelerator()\n"
        "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)\n"
        + loop
        + "    loss = model(**batch).loss\n    accelerator.backward(loss)\n"
        "    optimizer.step()\n    optimizer.zero_grad()\n"
    )
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith(reason), problem


BCE = """\
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
criterion = nn.BCELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
{body}
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(
    ("body", "line", "why"),
    [
        ("    loss = criterion(model(x), y)", 8, "no statement above it runs the model"),
        (
            "    out = model(x)\n    loss = criterion(out[0], y)",
            9,
            "it reads `out[0]`, which is not a whole output",
        ),
        (
            "    out = model(x)\n    loss = criterion(out, y) + criterion(model(x), y)",
            9,
            "this statement runs model again",
        ),
    ],
)
def test_an_unsafe_loss_that_cannot_be_left_outside_autocast_is_refused(
    body: str, line: int, why: str
):
    (problem,) = _problems(BCE.format(body=body), CodemodOptions(precision="bf16"))
    assert problem.startswith(f"train.py:{line}:")
    assert "binary_cross_entropy (BCELoss)" in problem and why in problem


def test_an_autocast_over_the_forward_pass_alone_is_the_scripts_own():
    # the loss below it, outside, in float32 on purpose: no second autocast around the first
    body = (
        "    with torch.autocast('cpu', dtype=torch.bfloat16):\n"
        "        out = model(x)\n"
        "    loss = criterion(out.float(), y)"
    )
    result = codemod_source(BCE.format(body=body), CodemodOptions(precision="bf16"), "train.py")
    assert not result.problems and not result.changed


DRY_RUN = """\
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for batch_idx, (x, y) in enumerate(loader):
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    if dry_run:
        break
"""


def test_a_break_below_the_step_is_said_to_leave_the_window_unstepped():
    # pytorch/examples' `if args.dry_run: break` after one batch: with windows of 4 the
    # rewritten dry run makes no update, and the user is told so at the break
    result = codemod_source(DRY_RUN, ACCUM, "train.py")
    assert result.new_source is not None and not result.problems
    (note,) = (str(n) for n in result.notes if "break" in n.text)
    assert note.startswith("train.py:11:9:") and "not stepped" in note and "no update" in note


LORA_SCRIPT = """\
import torch

model = build()
{between}optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
for x, y in loader:
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


def _lora(text: str = "r=8,alpha=16,targets=q_proj,v_proj"):
    from freezegen.codemod.options import parse_lora

    return CodemodOptions(lora=parse_lora(text), trainable_only_optimizer=True)


def test_lora_attaches_above_the_optimizer_and_a_second_run_changes_nothing():
    result = codemod_source(LORA_SCRIPT.format(between=""), _lora(), "train.py")
    new = result.new_source
    assert new is not None and not result.problems
    assert (
        "model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, "
        'target_modules=["q_proj", "v_proj"]))\n'
        "optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad]"
    ) in new
    assert "from peft import LoraConfig, get_peft_model\n" in new
    assert not codemod_source(new, _lora(), "train.py").changed


def test_lora_refuses_weights_loaded_after_the_attach_point_and_another_config():
    # the load sits after the optimizer (a resume of base weights): the names would not match
    script = LORA_SCRIPT.format(between="") + "model.load_state_dict(torch.load('base.pt'))\n"
    (problem,) = _problems(script, _lora())
    assert problem.startswith("train.py:9:1:") and "base_layer" in problem
    attached = codemod_source(LORA_SCRIPT.format(between=""), _lora(), "train.py").new_source
    (problem,) = _problems(attached, _lora("r=4,targets=q_proj"))
    assert "another configuration" in problem


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("alpha=16,targets=q_proj", "needs r="),
        ("r=8", "needs targets="),
        ("r=8,rank=4,targets=q", "unknown setting 'rank'"),
        ("r=0,targets=q", "at least 1"),
        ("r=8,targets=q proj", "not a module name"),
        ("r=8,q_proj,targets=v", "not key=value"),
    ],
)
def test_lora_settings_are_checked(text: str, why: str):
    from freezegen.codemod.options import OptionsError, parse_lora

    with pytest.raises(OptionsError, match=why):
        parse_lora(text)
    assert parse_lora("r=8,targets=q_proj,v_proj,dropout=0.1").alpha == 16  # alpha: 2r


def test_a_spec_adapter_becomes_lora_on_the_planned_modules(tmp_path: Path, repo: Path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(
        f"version: 1\nmodel: {{hf_config: {repo / 'examples/tiny/config.json'}}}\n"
        "adapter: {r: 4, alpha: 8, dropout: 0.1, targets: [attention], layers: {last: 1}, "
        'train: ["lm_head.*"]}\n'
        "quantization: {weights: nf4}\nbatch: {micro_batch_size: 2, seq_len: 32}\n"
    )
    options = options_from_spec(spec)
    assert options.lora == LoraOptions(
        4, 8.0, ("transformer.h.3.attn.c_attn", "transformer.h.3.attn.c_proj"), 0.1
    )
    assert options.freeze == () and options.trainable_only_optimizer
    assert any("adapter.train is not added" in n for n in options.notes)
    assert any("quantization.weights nf4 is not added" in n for n in options.notes)


def test_a_break_in_the_loop_that_calls_the_step_function_is_said_too():
    source = (
        "import torch\n\n"
        "model = torch.nn.Linear(4, 1)\n"
        "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n\n\n"
        "def train_step(x, y):\n"
        "    optimizer.zero_grad()\n"
        "    loss = torch.nn.functional.mse_loss(model(x), y)\n"
        "    loss.backward()\n"
        "    optimizer.step()\n\n\n"
        "for batch_idx, (x, y) in enumerate(loader):\n"
        "    train_step(x, y)\n"
        "    if dry_run:\n"
        "        break\n"
    )
    result = codemod_source(source, ACCUM, "train.py")
    assert result.new_source is not None and not result.problems
    (note,) = (str(n) for n in result.notes if "break" in n.text)
    assert note.startswith("train.py:17:9:")


TWO_LOOPS = """\
import torch

ptdtype = {{"bf16": torch.bfloat16, "fp16": torch.float16}}[args.dtype]
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in loader:
    {first}
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
for x in loader:
    {second}
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""
OWN_AUTOCAST = 'with torch.autocast("cuda", dtype=ptdtype):\n        loss = model(x).sum()'


def test_each_training_loop_keeps_its_own_mechanism_and_is_told_at_its_line():
    source = TWO_LOOPS.format(first=OWN_AUTOCAST, second=OWN_AUTOCAST)
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert result.problems == [] and result.kept == ["precision"] and not result.changed
    assert [a.line for a in result.actions] == [6, 12]


def test_one_loop_keeping_its_own_mechanism_and_another_without_is_refused():
    """Autocast of the codemod's in one loop and the script's own, set by the user, in the
    other would be two mechanisms for one setting: refused at the kept one."""
    source = TWO_LOOPS.format(first=OWN_AUTOCAST, second="loss = model(x).sum()")
    result = codemod_source(source, CodemodOptions(precision="bf16"), "train.py")
    assert [str(p) for p in result.problems] == [
        "train.py:6:5: cannot add precision: one training loop keeps the script's own "
        "mechanism here and another has none; give them the same one"
    ]
    assert not result.changed


ENDLESS = """\
import itertools

import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in LOOP:
    x = torch.randn(8, 4)
    loss = model(x).pow(2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    if loss.item() < 1e-3:
        break
"""


@pytest.mark.parametrize(
    ("loop", "first", "last"),
    [
        ("itertools.count(1)", "(step - 1) % 4 == 0", "if step % 4 == 0:"),
        ("itertools.count()", "step % 4 == 0", "if (step + 1) % 4 == 0:"),
        ("itertools.count(start=3)", "(step - 3) % 4 == 0", "if (step - 2) % 4 == 0:"),
    ],
)
def test_an_endless_count_loop_left_by_a_break_accumulates_whole_windows(loop, first, last):
    result = codemod_source(ENDLESS.replace("LOOP", loop), ACCUM, "train.py")
    assert result.new_source is not None, result.problems
    assert "(loss / 4).backward()" in result.new_source and last in result.new_source
    assert first not in result.new_source  # zero_grad below the step runs with it, per window
    (note,) = [str(n) for n in result.notes]
    assert note.startswith("train.py:14:9: `for step in " + loop + "` never runs out")
    assert "(up to 3) are not stepped" in note


@pytest.mark.parametrize("loop", ["stream()", "itertools.count(0, 2)", "itertools.count(n)"])
def test_a_loop_that_may_run_out_or_counts_otherwise_keeps_its_refusal(loop: str):
    # a break does not make stream() endless: it may still end by running out mid-window
    (problem,) = _problems(ENDLESS.replace("LOOP", loop), ACCUM)
    assert problem.startswith("train.py:7:13: cannot add accumulation: cannot tell how many")


def test_an_endless_loop_over_the_same_data_is_not_a_micro_step_loop():
    # a full-batch trainer that runs until it converges: nothing to accumulate over
    source = ENDLESS.replace("LOOP", "itertools.count()").replace("x = torch.randn(8, 4)", "x = X")
    (problem,) = _problems(source, ACCUM)
    assert problem.startswith(
        "train.py:7:1: cannot add accumulation: the loop `for step in itertools.count()` "
        "reuses the same data on every pass"
    )


HAND_STEP = """\
import torch

MODELS
for step in range(100):
    batch = torch.randn(8, 4)
    net.zero_grad()
    loss = net(batch).pow(2).mean()
    loss.backward()
    for p in net.parameters():
        p.data.add_(-0.1 * p.grad)
    UPDATE_OTHER
"""


def test_a_hand_written_update_of_two_models_is_refused():
    models = "net = torch.nn.Linear(4, 1)\nhead = torch.nn.Linear(1, 1)"
    source = HAND_STEP.replace("MODELS", models)
    source = source.replace(
        "UPDATE_OTHER", "for q in head.parameters():\n        q.data -= 0.1 * q.grad"
    )
    (problem,) = _problems(source, CodemodOptions(freeze=["weight"]))
    assert problem == (
        "train.py:12:5: cannot add freeze: the script updates the parameters of net and head by "
        "hand: the codemod rewrites scripts that train one model"
    )


def test_a_hand_written_update_of_a_model_built_elsewhere_is_refused():
    source = HAND_STEP.replace("MODELS", "net = build()\n").replace("UPDATE_OTHER", "")
    source = "def build():\n    return torch.nn.Linear(4, 1)\n\n\n" + source.replace(
        "net = build()\n", ""
    )
    (problem,) = _problems(source, CodemodOptions(freeze=["weight"]))
    assert "cannot tell where `net` is built before the loop that runs it" in problem


def test_a_hand_written_update_is_the_step_that_windows_take():
    source = HAND_STEP.replace("MODELS", "net = torch.nn.Linear(4, 1)").replace("UPDATE_OTHER", "")
    result = codemod_source(source, CodemodOptions(freeze=["bias"], grad_accum_steps=4))
    new = result.new_source
    assert new is not None, result.problems
    guard = "    if (step + 1) % 4 == 0 or step + 1 == 100:\n"
    assert guard + "        for p in net.parameters():" in new
    assert "            if p.grad is None:\n                continue\n" in new
    assert new.index("for param_name, param in net.named_parameters()") < new.index("for step")


SAVED_ON_THE_MODEL = """\
import torch

policy = torch.nn.Linear(4, 2)
policy.saved = []
policy.rewards = []
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)


def act(state):
    policy.saved.append(policy(state).log_softmax(-1)[:1])
    policy.rewards.append(float(state.sum() > 0))


def finish():
    returns = torch.tensor(policy.rewards)
    optimizer.zero_grad()
    loss = -(torch.cat(policy.saved) * returns).sum()
    loss.backward()
    optimizer.step()
    policy.saved.clear()
    policy.rewards.clear()


for episode in range(10):
    for t in range(5):
        act(torch.randn(4))
    finish()
"""


def test_autocast_goes_around_the_model_call_that_fills_the_list_the_loss_reads():
    result = codemod_source(SAVED_ON_THE_MODEL, CodemodOptions(precision="bf16"), "train.py")
    new = result.new_source
    assert new is not None, result.problems
    device = "next(policy.parameters()).device.type"
    assert (
        f"    with torch.amp.autocast({device}, dtype=torch.bfloat16):\n"
        "        policy.saved.append(policy(state).log_softmax(-1)[:1])\n"
    ) in new
    assert new.count("autocast") == 1  # rewards come from the environment: no model call
    (note,) = [str(n) for n in result.notes]
    assert note.startswith("train.py:10:5: autocast covers this call of the model in act()")


def test_a_list_on_the_model_that_no_model_call_fills_leaves_the_refusal():
    source = SAVED_ON_THE_MODEL.replace("policy(state).log_softmax(-1)[:1]", "state[:1]")
    (problem,) = _problems(source, CodemodOptions(precision="bf16"))
    assert "no statement that computes the loss here runs a forward pass" in problem
