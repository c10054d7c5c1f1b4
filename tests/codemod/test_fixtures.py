"""``freezegen codemod`` on realistic scripts: tests/fixtures/codemod/*.in.py against *.out.py.

The first line of each input names the options (``# codemod: --freeze 0.* ...``), run through
the real command line. ``pytest --update-golden`` rewrites the *.out.py files from the current
behaviour (review the diff). Every output is compared to its golden file, is a fixed point of the
codemod, keeps the input's comments and blank lines, and is executed: it must train, freeze
what it was asked to freeze and, where the script names ``epochs`` and ``micro_batches``, step
the optimizer ceil(micro_batches / N) times per epoch; where it names ``passes`` (the passes a
``while`` loop made, which has no length to cut a last window to), floor(passes / N) times.

A ``*.refuse.py`` fixture is a script the codemod must leave alone: the reasons it gives
(located, file name only) are pinned in ``*.refuse.txt``. A ``*.kept.py`` fixture already does
what was asked with a mechanism whose value only its user can set: the codemod leaves it alone
too, without a refusal, and what it tells the user to set is pinned in ``*.kept.txt``.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import runpy
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)
from typer.testing import CliRunner

from freezegen.cli import app
from tests.codemod import fabric_standin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codemod"
INPUTS = sorted(FIXTURES.glob("*.in.py"))
IDS = [p.name.removesuffix(".in.py") for p in INPUTS]
REFUSED = sorted(p.name.removesuffix(".refuse.py") for p in FIXTURES.glob("*.refuse.py"))
KEPT = sorted(p.name.removesuffix(".kept.py") for p in FIXTURES.glob("*.kept.py"))


def _flags(source: Path) -> list[str]:
    first = source.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# codemod: "), f"{source.name}: first line must name the options"
    flags = shlex.split(first.removeprefix("# codemod: "))
    return [str(FIXTURES / f) if f.endswith(".yaml") else f for f in flags]


def _run(path: Path, flags: list[str], *extra: str):
    return CliRunner().invoke(app, ["codemod", str(path), *flags, *extra])


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str, Path]]:
    """case -> (input, output, path of the rewritten file); each rewrite done once."""
    out = {}
    folder = tmp_path_factory.mktemp("codemod")
    for source, case in zip(INPUTS, IDS, strict=True):
        target = folder / f"{case}.py"
        shutil.copyfile(source, target)
        result = _run(target, _flags(source), "--write")
        assert result.exit_code == 0, result.output
        out[case] = (source.read_text(encoding="utf-8"), target.read_text(encoding="utf-8"), target)
        KEEPING[case] = [
            line.replace(str(target), f"{case}.in.py")
            for line in result.output.splitlines()
            if "keeping the script's own " in line
        ]
    return out


KEEPING: dict[str, list[str]] = {}
"""case -> what its rewrite left to the user to set (filled by ``rewritten``)."""


@pytest.mark.parametrize("case", IDS)
def test_what_is_left_to_the_user_is_pinned(case: str, rewritten, update_golden: bool):
    """A mechanism of the script's own that the codemod kept is said, located, and matches
    ``{case}.kept.txt``; a fixture without that file keeps nothing."""
    golden = FIXTURES / f"{case}.kept.txt"
    if update_golden and KEEPING[case]:
        golden.write_text("".join(line + "\n" for line in KEEPING[case]), encoding="utf-8")
    expected = golden.read_text(encoding="utf-8").splitlines() if golden.exists() else []
    assert KEEPING[case] == expected


def test_fixtures_exist():
    assert len(INPUTS) >= 6


@pytest.mark.parametrize("case", IDS)
def test_matches_golden(case: str, rewritten, update_golden: bool):
    text, new, _ = rewritten[case]
    golden = FIXTURES / f"{case}.out.py"
    if update_golden:
        golden.write_text(new, encoding="utf-8")
    assert golden.exists(), f"missing {golden.name}: run pytest --update-golden"
    assert new == golden.read_text(encoding="utf-8")
    assert new != text, "a fixture should exercise at least one transform"
    compile(new, golden.name, "exec")


@pytest.mark.parametrize("case", IDS)
def test_idempotent(case: str, rewritten):
    _, new, path = rewritten[case]
    result = _run(path, _flags(FIXTURES / f"{case}.in.py"), "--check")
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == new


@pytest.mark.parametrize("case", IDS)
def test_comments_and_blank_lines_survive(case: str, rewritten):
    text, new, _ = rewritten[case]
    old_lines, new_lines = text.splitlines(), new.splitlines()
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    added = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            added += new_lines[j1:j2]
            for line in old_lines[i1:i2]:
                # a removed line is a statement that was edited: never a comment or a blank line
                # unless it moved into a new block, indented and otherwise byte for byte
                if not line.strip() or line.lstrip().startswith("#"):
                    assert any(a.endswith(line) for a in added + new_lines[j2:]), line
    assert _comments(text) == [c for c in _comments(new) if c in _comments(text)]
    assert text.count("\n\n") <= new.count("\n\n")


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("case", IDS)
def test_rewritten_script_trains(case: str, rewritten, monkeypatch: pytest.MonkeyPatch):
    """Execute the rewrite on CPU (fp16 too: torch.amp supports it there) and watch it learn."""
    _, new, path = rewritten[case]
    monkeypatch.chdir(path.parent)
    fabric_standin.install(monkeypatch)
    torch.manual_seed(0)
    steps, first_step_grads = [], {}

    def before_step(optimizer, args, kwargs) -> None:
        if not first_step_grads:
            for group in optimizer.param_groups:
                first_step_grads.update(
                    {id(p): p.grad.clone() for p in group["params"] if p.grad is not None}
                )

    hooks = [
        register_optimizer_step_pre_hook(before_step),
        register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1)),
    ]
    # a GradScaler skips the optimizer's step when fp16 gradients overflowed: that is still
    # the window's update, so count its step calls instead of the optimizer steps under them
    scaler_step = torch.amp.GradScaler.step

    def counted_scaler_step(self, optimizer, *args, **kwargs):
        before = len(steps)
        out = scaler_step(self, optimizer, *args, **kwargs)
        del steps[before:]
        steps.append(1)
        return out

    monkeypatch.setattr(torch.amp.GradScaler, "step", counted_scaler_step)
    _forget_accelerate_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GradScaler("cuda") on a CPU machine disables itself
            scope = runpy.run_path(str(path), run_name="__main__")
    finally:
        for hook in hooks:
            hook.remove()
    # a script that steps by hand (p.data.add_(p.grad, ...)) records its updates and the
    # gradients its first one read: optimizer hooks cannot see those
    steps += scope.get("manual_steps", [])
    if not first_step_grads:
        first_step_grads.update(scope.get("manual_first_grads", {}))
    if "window_gradient" in scope:  # the first update: one batch N times larger, in fp32
        n = _accumulation_window(_flags(FIXTURES / f"{case}.in.py"))
        expected = scope["window_gradient"](n)
        named = dict(scope["model"].named_parameters())
        assert expected and set(expected) == {
            k for k, p in named.items() if id(p) in first_step_grads
        }
        for name, grad in expected.items():
            torch.testing.assert_close(first_step_grads[id(named[name])], grad)
    if "forward_dtypes" in scope:  # recorded by a forward hook: autocast must cover it
        flags = _flags(FIXTURES / f"{case}.in.py")
        wanted = {"bf16": torch.bfloat16, "fp16": torch.float16}[
            flags[flags.index("--precision") + 1]
        ]
        assert scope["forward_dtypes"] and set(scope["forward_dtypes"]) == {wanted}
    if "micro_batches" in scope:
        n = _accumulation_window(_flags(FIXTURES / f"{case}.in.py"))
        expected = scope["epochs"] * math.ceil(scope["micro_batches"] / n)
        assert len(steps) == expected, f"{len(steps)} optimizer steps, expected {expected}"
    if "passes" in scope:  # a `while` loop: no length, so a last partial window is not stepped
        n = _accumulation_window(_flags(FIXTURES / f"{case}.in.py"))
        expected = scope["passes"] // n
        assert len(steps) == expected, f"{len(steps)} optimizer steps, expected {expected}"
    losses = scope["losses"]
    assert losses and all(math.isfinite(x) for x in losses)
    k = max(1, len(losses) // 5)
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k, "the loss should go down"
    model, initial = scope["model"], scope["initial_state"]
    if "--lora" in _flags(FIXTURES / f"{case}.in.py"):  # peft: the base frozen, adapters learn
        base = model.get_base_model().state_dict()
        adapters = {k: v for k, v in base.items() if "lora_" in k}
        trained = [v for k, v in adapters.items() if "lora_B" in k]  # lora_B starts at zero
        assert trained and all(torch.count_nonzero(v) for v in trained)
        base = {k.replace(".base_layer", ""): v for k, v in base.items() if "lora_" not in k}
        assert base.keys() == initial.keys()
        assert all(torch.equal(initial[k], base[k]) for k in initial), "a base weight changed"
        return
    globs = _frozen_globs(_flags(FIXTURES / f"{case}.in.py"))
    state = model.state_dict()
    frozen = [k for k in initial if any(fnmatch.fnmatchcase(k, g) for g in globs)]
    assert not globs or frozen, "the freeze globs should match something"
    for key in initial:
        if not initial[key].is_floating_point() or "running_" in key:
            continue
        same = torch.equal(initial[key], state[key])
        if key in frozen:
            assert same, f"{key} is frozen but changed"
    assert any(not torch.equal(initial[k], state[k]) for k in initial if k not in frozen)
    if "checkpoint" in new:
        assert "gradient_checkpointing_enable(" in new or "checkpoint_wrapper(" in new


def _forget_accelerate_state() -> None:
    """Accelerate keeps one process-wide state (its mixed precision, its accumulation window)
    and refuses an Accelerator(...) that asks for another: each script runs as a fresh process
    would, as Accelerate's own tests do between cases."""
    state = sys.modules.get("accelerate.state")
    if state is not None:
        state.AcceleratorState._reset_state(reset_partial_state=True)
        state.GradientState._reset_state()


def _accumulation_window(flags: list[str]) -> int:
    return next((int(flags[i + 1]) for i, f in enumerate(flags) if f == "--grad-accum-steps"), 1)


@pytest.mark.parametrize("case", REFUSED)
def test_refused_with_located_reasons(case: str, tmp_path: Path, update_golden: bool):
    """The file is left byte for byte as it was; every reason names its line."""
    _left_alone(case, "refuse", 1, tmp_path, update_golden)


@pytest.mark.parametrize("case", KEPT)
def test_kept_with_located_settings_for_the_user(case: str, tmp_path: Path, update_golden: bool):
    """Nothing refused and nothing added on top of the script's own mechanism; what to set,
    and where, is said on a located line."""
    lines = _left_alone(case, "kept", 0, tmp_path, update_golden)
    assert all("keeping the script's own " in line for line in lines)


def _left_alone(case: str, kind: str, code: int, tmp_path: Path, update_golden: bool) -> list[str]:
    """Run ``--write`` on ``{case}.{kind}.py``: the exit status is ``code``, the file is
    unchanged, and its located lines equal ``{case}.{kind}.txt``."""
    source = FIXTURES / f"{case}.{kind}.py"
    target = tmp_path / source.name
    shutil.copyfile(source, target)
    result = _run(target, _flags(source), "--write")
    assert result.exit_code == code, result.output
    assert target.read_bytes() == source.read_bytes()
    lines = [
        line.replace(str(target), source.name)
        for line in result.output.splitlines()
        if line.startswith(str(target))
    ]
    assert lines and all(r.split(":")[1].isdigit() for r in lines), result.output
    golden = FIXTURES / f"{case}.{kind}.txt"
    if update_golden:
        golden.write_text("".join(r + "\n" for r in lines), encoding="utf-8")
    assert lines == golden.read_text(encoding="utf-8").splitlines()
    return lines


def _frozen_globs(flags: list[str]) -> list[str]:
    globs = [flags[i + 1] for i, f in enumerate(flags) if f == "--freeze"]
    for f in flags:
        if f.endswith(".yaml"):
            from freezegen.codemod import options_from_spec

            globs += options_from_spec(f).freeze
    return globs
