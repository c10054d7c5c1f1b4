"""Rendering: deterministic, valid and ruff-clean Python for every example and random specs;
user strings stay strings; templates ship in the wheel; the ``generate`` command."""

from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.generate import GenerateError, check_script, render_script
from freezegen.generate.literals import assignment, literal, string
from freezegen.spec import load_spec
from freezegen.spec.models import FILE_SOURCES, Spec
from freezegen.spec.presets import MODEL_PRESETS
from tests.generate.conftest import REPO, generate, run_script, tiny_spec

EXAMPLES = sorted(REPO.glob("examples/**/*freezegen.yaml"))
INJECTION = '"); import os; os.system("touch PWNED"); ("'


def ruff(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *map(str, args), "--config", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
    )


def assert_ruff_clean(folder: Path) -> None:
    checked = ruff("check", "--no-cache", folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = ruff("format", "--check", "--no-cache", folder)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_examples_render_deterministic_valid_python(example: Path, tmp_path: Path) -> None:
    spec = load_spec(example)
    text = render_script(spec, example, tmp_path)
    assert text == render_script(load_spec(example), example, tmp_path)
    ast.parse(text)
    (tmp_path / "train.py").write_text(text)
    assert_ruff_clean(tmp_path)


def test_output_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    example = REPO / "examples" / "tiny" / "freezegen.yaml"
    spec = load_spec(example)
    first = render_script(spec, example, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert render_script(spec, example, tmp_path) == first


def _reduced(example: Path, folder: Path) -> Path:
    """The example with its model swapped for a tiny one of the same family and a short run."""
    import yaml

    data = yaml.safe_load(example.read_text())
    source = data["model"]
    if "preset" in source:
        family = MODEL_PRESETS[source["preset"]].model_type
    else:
        family = json.loads((example.parent / source["hf_config"]).read_text())["model_type"]
    model = {k: v for k, v in source.items() if k not in ("preset", "hf_config")}
    batch = data["batch"]
    return tiny_spec(
        folder,
        family,
        **{k: v for k, v in data.items() if k not in ("model", "batch", "train", "checkpoint")},
        model={"hf_config": "./config.json", **model},
        batch={
            "micro_batch_size": 4,
            "grad_accum_steps": min(batch.get("grad_accum_steps", 1), 2),
            "seq_len": 16,
        },
        train={"max_steps": 6, "grad_clip": 1.0, "seed": 1, "log_every": 2},
    )


@pytest.mark.slow
def test_examples_run_reduced_to_tiny_models(tmp_path: Path) -> None:
    import yaml

    from tests.generate.conftest import run_scripts

    scripts = []
    for i, example in enumerate(EXAMPLES):
        reads_files = yaml.safe_load(example.read_text())["data"]["source"] in FILE_SOURCES
        if example.parent.name == "tiny" or reads_files:
            # The README's job, and the tiny data examples, run as they are: their folder
            # beside a copy of the shared files they read (examples/data-files).
            folder = tmp_path / "examples" / example.parent.name
            shutil.copytree(example.parent, folder)
            if reads_files and not (folder.parent / "data-files").exists():
                shutil.copytree(REPO / "examples" / "data-files", folder.parent / "data-files")
            scripts.append(generate(folder / example.name))
        else:
            scripts.append(generate(_reduced(example, tmp_path / f"ex{i}")))
    for run in run_scripts(scripts):
        run.check()
        assert "peak memory:" in run.stdout
        if "data-" in run.script.parent.name:  # the data examples learn their files
            assert run.losses[-1] < 0.7 * run.losses[0], run.stdout


@pytest.mark.slow
def test_user_strings_never_become_code(tmp_path: Path) -> None:
    weird = tmp_path / f"cfg{INJECTION}\nnext line\\"
    weird.mkdir()
    spec = tiny_spec(
        tmp_path,
        model={"hf_config": f"./{weird.name}", "head": "causal-lm"},
        freeze={"patterns": [INJECTION, "*'\"*\\"], "except": ["\n#"]},
        checkpoint={"dir": f"ck{INJECTION}\n", "every_steps": 4, "keep_last": 1},
        train={"max_steps": 4, "grad_clip": 1.0, "seed": 1, "log_every": 2},
    )
    (weird / "config.json").write_text((tmp_path / "config.json").read_text())
    script = generate(spec)
    tree = ast.parse(script.read_text())
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert "system" not in calls
    ns_strings = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert f"ck{INJECTION}\n" in ns_strings and INJECTION in ns_strings
    assert_ruff_clean(tmp_path)
    run_script(script).check()
    assert not list(tmp_path.rglob("PWNED"))
    assert (tmp_path / f"ck{INJECTION}\n" / "final").is_dir()


@given(st.text(max_size=60))
def test_string_literals_round_trip(value: str) -> None:
    assert ast.literal_eval(string(value)) == value


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    ),
    max_leaves=20,
)


@given(_values, st.integers(0, 3), st.integers(0, 120))
def test_literals_round_trip(value: object, indent: int, room: int) -> None:
    # Whatever the layout (inline or exploded at any depth), the source means the value.
    rendered = literal(value, indent, room)
    assert ast.literal_eval(rendered) == value
    statement = ast.parse(assignment("X", value)).body[0]
    assert isinstance(statement, ast.Assign)
    assert ast.literal_eval(statement.value) == value


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinities_render_as_float_calls(value: float) -> None:
    # float("inf") says what it is; literal_eval cannot read it, so it is evaluated here.
    assert eval(literal(value), {"__builtins__": {"float": float}}) == value


@pytest.mark.parametrize("value", ["\\'", 'a\\"b', "\\\\'", "'\\", '"\\"', "é\\'\n"])
def test_backslashes_before_quotes_survive(value: str) -> None:
    # A backslash before a quote was once taken for repr's own quote escape and dropped.
    assert ast.literal_eval(string(value)) == value


_selector = st.one_of(
    st.builds(lambda n: {"first": n}, st.integers(0, 30)),
    st.builds(lambda n: {"last": n}, st.integers(0, 30)),
    st.builds(lambda a, b: f"{a}-{a + b}", st.integers(0, 20), st.integers(0, 10)),
    st.lists(st.integers(0, 40), max_size=5),
)
_glob = st.text(min_size=1, max_size=30)
# A path the spec accepts: "~user" must name a real user, and NUL is never part of a path.
_path = _glob.filter(lambda s: "\x00" not in s and not s.startswith("~"))
_spec = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "model": st.one_of(
            st.fixed_dictionaries(
                {
                    "preset": st.sampled_from(sorted(MODEL_PRESETS)),
                    "head": st.sampled_from(["causal-lm", "sequence-classification"]),
                    "attention": st.sampled_from(["sdpa", "eager"]),
                    "dropout": st.one_of(st.none(), st.floats(0, 0.5)),
                }
            ),
            st.fixed_dictionaries({"factory": st.sampled_from(["pkg.mod:build", "a:b.c"])}),
        ),
        "freeze": st.fixed_dictionaries(
            {
                "embeddings": st.booleans(),
                "layers": st.one_of(st.none(), _selector),
                "modules": st.one_of(
                    st.none(), st.lists(st.sampled_from(["attention", "mlp", "norm"]), max_size=3)
                ),
                "patterns": st.lists(_glob, max_size=3),
                "except": st.lists(_glob, max_size=2),
                "schedule": st.lists(
                    st.fixed_dictionaries(
                        {
                            "at_step": st.integers(0, 100),
                            "unfreeze": st.fixed_dictionaries(
                                {"layers": _selector, "patterns": st.lists(_glob, max_size=2)}
                            ),
                        }
                    ),
                    max_size=2,
                ),
            }
        ),
        "precision": st.sampled_from(["fp32", "fp16", "bf16", "bf16-pure"]),
        "optimizer": st.fixed_dictionaries(
            {
                "name": st.sampled_from(["adamw", "adam", "sgd"]),
                "lr": st.floats(1e-8, 1.0),
                "implementation": st.sampled_from(["foreach", "fused", "loop"]),
            }
        ),
        "scheduler": st.fixed_dictionaries(
            {
                "name": st.sampled_from(["constant", "linear", "cosine"]),
                "warmup_steps": st.integers(0, 50),
            }
        ),
        "batch": st.fixed_dictionaries(
            {
                "micro_batch_size": st.integers(1, 64),
                "grad_accum_steps": st.integers(1, 16),
                "seq_len": st.integers(1, 4096),
            }
        ),
        "activation_checkpointing": st.one_of(
            st.booleans(),
            st.fixed_dictionaries(
                {"layers": st.sampled_from(["all", "every-2", "every-3", "0-3", "1,5-7"])}
            ),
        ),
        "compile": st.booleans(),
        "distributed": st.fixed_dictionaries(
            {"strategy": st.sampled_from(["none", "ddp", "fsdp"])}
        ),
        "train": st.fixed_dictionaries(
            {
                "max_steps": st.integers(1, 10**6),
                "grad_clip": st.one_of(st.none(), st.floats(0.01, 10)),
                "seed": st.integers(0, 2**40),
            }
        ),
        "data": st.one_of(
            st.just({"source": "synthetic"}),
            st.fixed_dictionaries({"source": st.just("factory"), "factory": st.just("d:ata")}),
            st.fixed_dictionaries(
                {
                    "source": st.just("jsonl"),
                    "path": _path,
                    "tokenizer": st.just("tok"),
                    "text_field": st.text(max_size=20),
                }
            ),
        ),
        "checkpoint": st.fixed_dictionaries(
            {
                "dir": _path,
                "every_steps": st.one_of(st.none(), st.integers(1, 1000)),
                "resume": st.one_of(st.sampled_from(["auto", "never"]), _path),
            }
        ),
    }
)


def test_random_specs_render_ast_and_ruff_clean(tmp_path: Path) -> None:
    texts: list[str] = []

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(_spec)
    def render(data: dict) -> None:
        spec = Spec.model_validate(data, context={"base_dir": tmp_path})
        try:
            text = render_script(spec, tmp_path / "x.freezegen.yaml", tmp_path)
        except GenerateError as exc:
            # the two refusals: text data has no labels; some families have no such head
            assert spec.model.head == "sequence-classification", exc
            assert spec.data.source == "text" or "no sequence-classification head" in str(exc)
            return
        ast.parse(text)
        texts.append(text)

    render()
    assert texts
    out = tmp_path / "out"
    out.mkdir()
    for i, text in enumerate(texts):
        (out / f"train_{i}.py").write_text(text)
    assert_ruff_clean(out)


def test_long_strings_stay_ruff_clean(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text(
        assignment("X", "a " * 80)
        + "\n"
        + assignment("Y", {"key": ["b " * 60, 1.5, None, (1,), float("inf")]})
        + "\n"
    )
    assert_ruff_clean(tmp_path)


def test_unsupported_specs_are_user_errors(tmp_path: Path) -> None:
    spec = load_spec(tiny_spec(tmp_path, activation_checkpointing={"reentrant": True}))
    with pytest.raises(GenerateError, match="reentrant"):
        render_script(spec, tmp_path / "freezegen.yaml", tmp_path)


def test_cli_generate_writes_and_checks(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path)
    out = tmp_path / "train.py"
    runner = CliRunner()
    result = runner.invoke(app, ["generate", str(spec), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert check_script(load_spec(spec), spec, out)
    assert runner.invoke(app, ["generate", str(spec), "-o", str(out), "--check"]).exit_code == 0
    out.write_text(out.read_text() + "# edited\n")
    result = runner.invoke(app, ["generate", str(spec), "-o", str(out), "--check"])
    assert result.exit_code == 1 and "out of date" in result.output
    result = runner.invoke(app, ["generate", str(spec)])
    assert result.exit_code == 0 and result.output.startswith("#!/usr/bin/env python")


def test_cli_generate_user_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["generate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "no such file" in result.output
    bad = tmp_path / "bad.freezegen.yaml"
    bad.write_text("version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 0, seq_len: 8}\n")
    result = runner.invoke(app, ["generate", str(bad)])
    assert result.exit_code == 2 and "micro_batch_size" in result.output
    reentrant = tiny_spec(tmp_path / "reentrant", activation_checkpointing={"reentrant": True})
    result = runner.invoke(app, ["generate", str(reentrant)])
    assert result.exit_code == 2 and "reentrant" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_templates_ship_in_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("freezegen-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    assert (site / "freezegen" / "templates" / "train.py.j2").is_file()
    shipped = site / "freezegen" / "templates"
    templates = REPO / "templates"
    assert {p.relative_to(shipped) for p in shipped.rglob("*.j2")} == {
        p.relative_to(templates) for p in templates.rglob("*.j2")
    }, "every template part ships in the wheel"
    spec = tiny_spec(tmp_path / "spec")
    code = (
        "import sys; from freezegen.spec import load_spec; from freezegen.generate import "
        f"render_script; sys.stdout.write(render_script(load_spec({str(spec)!r}), {str(spec)!r}))"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=spec.parent, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render_script(load_spec(spec), spec, spec.parent)
