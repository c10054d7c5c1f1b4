"""``lint --fix`` / ``--diff`` / ``--unsafe-fixes``: the fixes rules offer, written into the
spec with comments and layout intact; the fixed spec lints clean of what was fixed, and a
second run changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.spec import load_text
from freezegen.spec.edit import Edit, edits_between

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lint_fix"
SPECS = sorted(FIXTURES.glob("*.freezegen.yaml"))
IDS = [p.name.removesuffix(".freezegen.yaml") for p in SPECS]


def _lint(*args: str):
    return CliRunner().invoke(app, ["lint", "--no-config", *args])


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_fix_diff_is_exactly_the_changed_values(spec: Path, unsafe: bool, golden, tmp_path):
    target = tmp_path / spec.name
    shutil.copyfile(spec, target)
    flags = ["--unsafe-fixes"] if unsafe else []
    shown = _lint("--diff", *flags, str(target))
    assert shown.exit_code in (0, 1), shown.output
    assert target.read_bytes() == spec.read_bytes()  # --diff writes nothing
    diff = shown.stdout.replace(str(target), spec.name)
    golden.check_text(diff, FIXTURES / f"{spec.name}.{'unsafe' if unsafe else 'safe'}.diff")
    fixed = _lint("--fix", *flags, str(target))
    assert fixed.exit_code in (0, 1), fixed.output
    after = target.read_text()
    assert (after != spec.read_text()) == bool(diff)
    again = _lint("--fix", *flags, str(target))
    assert target.read_text() == after, "a second --fix changed the file again"
    codes_before = {
        line.split()[1] for line in _lint(str(spec)).stdout.splitlines() if ": FG" in line
    }
    codes_after = {line.split()[1] for line in again.stdout.splitlines() if ": FG" in line}
    if diff:
        assert codes_after < codes_before, (codes_before, codes_after)


def test_a_safe_fix_is_written_without_unsafe_fixes_and_the_spec_then_fits(tmp_path):
    target = tmp_path / "freezegen.yaml"
    shutil.copyfile(FIXTURES / "llama-on-a10g.freezegen.yaml", target)
    result = _lint("--fix", str(target))
    assert result.exit_code == 0, result.output
    assert "Fixed 1 finding(s) in 1 file(s)." in result.stderr
    text = target.read_text()
    assert "  attention: eager          # copied from an old notebook" in text
    assert "# foreach is the default; fused is faster here anyway" in text
    assert "FG201" not in _lint(str(target)).stdout


def test_an_unsafe_fix_is_only_announced_without_unsafe_fixes(tmp_path):
    target = tmp_path / "freezegen.yaml"
    shutil.copyfile(FIXTURES / "llama-3-8b-h100.freezegen.yaml", target)
    result = _lint("--fix", str(target))
    assert result.exit_code == 1 and "FG201" in result.stdout
    assert "available with --unsafe-fixes" in result.stderr
    assert target.read_bytes() == (FIXTURES / "llama-3-8b-h100.freezegen.yaml").read_bytes()


def test_unsafe_fixes_alone_is_a_usage_error(tmp_path):
    result = _lint("--unsafe-fixes", str(FIXTURES / "suppressed.freezegen.yaml"))
    assert result.exit_code == 2 and "needs --fix or --diff" in result.output


def test_a_fix_that_cannot_be_written_faithfully_leaves_the_file_and_says_why(tmp_path):
    # the warmup sits behind an alias: editing it would change the other place too
    text = (
        "version: 1\nmodel: {preset: gpt2}\ntrain: {max_steps: &n 500}\n"
        "scheduler: {warmup_steps: *n}\nbatch: {micro_batch_size: 8, seq_len: 128}\n"
    )
    target = tmp_path / "freezegen.yaml"
    target.write_text(text)
    result = _lint("--fix", "--unsafe-fixes", str(target))
    assert target.read_text() == text
    assert "FG114 not fixed" in result.stderr and "alias" in result.stderr


def test_edits_between_specs_name_the_changed_leaves():
    base = "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 8, seq_len: 128}\n"
    old = load_text(base, "a.yaml").spec
    new = load_text(
        base.replace("8,", "2, grad_accum_steps: 4,") + "freeze: {layers: {first: 3}}\n",
        "b.yaml",
    ).spec
    assert edits_between(old, new) == (
        Edit(("freeze", "layers"), {"first": 3}),
        Edit(("batch", "micro_batch_size"), 2),
        Edit(("batch", "grad_accum_steps"), 4),
    )


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/freezegen.yaml"))


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_the_examples_need_no_fix(spec: Path):
    result = _lint("--diff", "--unsafe-fixes", str(spec))
    assert result.exit_code == 0 and result.stdout == "", result.output
