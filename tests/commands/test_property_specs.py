"""Property tests of the spec gate: whatever spec a user writes, lint, estimate and generate
answer with an exit status of 0, 1 or 2, never an internal error, and agree.

Specs: the shipped examples and one per preset (valid); those mutated (keys deleted, misspelt,
inserted or duplicated, values replaced, see tests/test_property_lint.py); and hostile ones, a
valid spec with one value swapped for a huge or tiny number, control characters, odd Unicode,
a wrong type or deep nesting. For each one:

- lint (in-process, JSON format) exits 0 or 1, every finding located (line and column >= 1);
- estimate (analytic) and generate exit 0 or 2, without raising, and stop (exit 2, with what
  ``lint --ignore FG2`` prints on stderr) exactly when lint reports an error other than a memory
  rule's (FG2xx, which judge the run on one card: see freezegen/commands/specs.py);
- generate -o writes nothing when it stops, and the file when it does not.

A few specs go through the real entry point, freezegen.cli.main, which must not print
"internal error".
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from freezegen.cli import main
from freezegen.commands import estimate, generate, lint
from freezegen.commands.specs import FIT_CODES
from freezegen.spec._validate import _models_in
from freezegen.spec.models import FirstBlocks, LastBlocks, Spec, UnfreezeStep
from freezegen.spec.presets import MODEL_PRESETS
from tests.test_property_lint import BASES, VALUES, mutated_spec

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "examples" / "tiny"

PROFILE = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same specs on every run: a failure here is never a flake
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _preset_spec(name: str) -> dict[str, Any]:
    return {
        "version": 1,
        "model": {"preset": name},
        "batch": {"micro_batch_size": 1, "seq_len": 128},
        "hardware": {"gpu": "A100-80GB"},
    }


VALID = [data for _, data in BASES] + [_preset_spec(name) for name in sorted(MODEL_PRESETS)]

# Values a hostile user tries: past every limit, below every minimum, text that acts on a
# terminal, Unicode that looks like something else, wrong types, nesting.
HOSTILE_VALUES = st.sampled_from(
    [
        2**31,
        2**63,
        2**64,
        2**200,
        -(2**64),
        -1,
        0,
        1e308,
        -1e308,
        1e-300,
        5e-324,
        float("inf"),
        float("nan"),
        100_000_000,
        "0-100000000",
        "every-100000",
        "9" * 5000,
        "os:system\n",
        "a..b:c",
        "\x1b[2J\nAll checks passed (1 file).",
        "\u202egpt2",
        "gpt2\u200b",
        "\uff47\uff50\uff54\uff12",  # full-width gpt2
        "\U0001f600",
        "\ud800",
        "~root/x",
        "../" * 50,
        "/dev/null",
        [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
        {"first": 10**20},
        {"last": 10},
        {"first": 1e20},
        True,
        None,
        [],
        {},
    ]
)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value (mappings' values and list items, containers included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*path, i)
            yield from _leaves(value, (*path, i))


@st.composite
def hostile_spec(draw: st.DrawFn) -> tuple[Path, str]:
    """A valid spec with one value (or a new key's value) replaced by a hostile one."""
    data = copy.deepcopy(draw(st.sampled_from(VALID)))
    paths = list(_leaves(data))
    path = draw(st.sampled_from(paths))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    value = draw(HOSTILE_VALUES | VALUES)
    if draw(st.booleans()) or not isinstance(parent, dict):
        parent[path[-1]] = value
    else:
        parent[draw(st.sampled_from(["first", "last", "layers", "seed", "x\ny"]))] = value
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()))
    return TINY, text


@st.composite
def huge_hex(draw: st.DrawFn) -> tuple[Path, str]:
    """A 50,000-digit hex number in a numeric field (yaml.safe_dump cannot write it)."""
    data = copy.deepcopy(draw(st.sampled_from(VALID)))
    key = draw(st.sampled_from(["seed", "max_steps", "log_every"]))
    data.setdefault("train", {})[key] = "HUGE"
    return TINY, yaml.safe_dump(data, sort_keys=False).replace("HUGE", "0x" + "f" * 50_000)


VALID_SPECS = st.sampled_from(VALID).map(lambda data: (TINY, yaml.safe_dump(data)))
SPECS = VALID_SPECS | mutated_spec() | hostile_spec() | huge_hex()


def _write(folder: Path, tmp: Path, text: str) -> Path:
    """The spec as ``spec.freezegen.yaml`` in ``tmp``, next to what its folder holds."""
    for extra in folder.iterdir():
        if extra.suffix == ".json":
            shutil.copy(extra, tmp / extra.name)
    spec = tmp / "spec.freezegen.yaml"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    return spec


def _stops(found: list[dict[str, Any]]) -> bool:
    """Whether the gate stops on these lint findings: an error other than a memory rule's."""
    return any(d["severity"] == "error" and not d["code"].startswith(FIT_CODES) for d in found)


def _check_spec(spec: Path) -> None:
    linted = lint.run(lint.Options(paths=(spec,), format="json", use_config=False))
    assert linted.exit_code in (0, 1), linted.output
    found = json.loads(linted.text("stdout"))["diagnostics"]
    lines = spec.read_text(encoding="utf-8", errors="replace").splitlines() or [""]
    for d in found:
        assert d["line"] >= 1 and d["column"] >= 1, d
        assert d["line"] <= len(lines) + 1, (d, len(lines))
    stops = _stops(found)
    # what the gate prints: lint's text with the memory rules left out
    text = lint.run(lint.Options(paths=(spec,), ignore=FIT_CODES, use_config=False))

    estimated = estimate.run(estimate.Options(spec=spec))
    output = spec.parent / "train.py"
    generated = generate.run(generate.Options(spec=spec, output=output))
    for name, result in (("estimate", estimated), ("generate", generated)):
        assert result.exit_code in (0, 2), (name, result.output)
        if stops:
            assert result.exit_code == 2, (name, found)
            assert result.text("stderr") == text.text("stdout"), name
    if stops or generated.exit_code != 0:
        assert not output.exists(), "generate wrote a script for a spec it refused"
    else:
        assert output.exists()


@PROFILE
@given(SPECS)
def test_every_spec_gets_an_answer_and_the_commands_agree(case: tuple[Path, str]) -> None:
    folder, text = case
    with tempfile.TemporaryDirectory() as tmp:
        _check_spec(_write(folder, Path(tmp), text))


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_every_preset_passes_the_gate(tmp_path: Path, name: str) -> None:
    spec = tmp_path / "p.freezegen.yaml"
    spec.write_text(yaml.safe_dump(_preset_spec(name)), encoding="utf-8")
    assert estimate.run(estimate.Options(spec=spec)).exit_code == 0
    assert generate.run(generate.Options(spec=spec)).exit_code == 0


def _cli(*args: str) -> tuple[int, str]:
    """Run freezegen.cli.main as the console script does; its exit status and stderr."""
    err = io.StringIO()
    argv = sys.argv
    sys.argv = ["freezegen", *args]
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    finally:
        sys.argv = argv
    return code, err.getvalue()


@settings(PROFILE, max_examples=6)
@given(SPECS)
def test_the_console_entry_point_never_reports_an_internal_error(case: tuple[Path, str]) -> None:
    folder, text = case
    with tempfile.TemporaryDirectory() as tmp:
        spec = _write(folder, Path(tmp), text)
        for args in (
            ("lint", "--no-config", str(spec)),
            ("estimate", str(spec)),
            ("generate", str(spec), "-o", str(Path(tmp) / "train.py")),
        ):
            code, err = _cli(*args)
            assert code in (0, 1, 2), (args, err)
            assert "internal error" not in err and "Traceback" not in err, (args, err)


def _numeric_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The key path of every int or float field of the spec models (the block selectors'
    first and last included), found by walking the annotations: none is left out by hand."""
    found: list[tuple[str, ...]] = []
    for name, info in model.model_fields.items():
        key = (*prefix, info.alias or name)
        text = repr(info.annotation)
        nested = _models_in(info.annotation)
        if any(kind in text for kind in ("int", "float")) and not nested:
            found.append(key)
        for sub in nested:
            if sub in (FirstBlocks, LastBlocks):
                found += [(*key, "first"), (*key, "last")]
            elif sub is UnfreezeStep:  # a list of steps: the first one stands for all
                found += _numeric_fields(sub, (*key, "0"))
            else:
                found += _numeric_fields(sub, key)
    return found


# version is Literal[1], a number too
NUMERIC_FIELDS = sorted({*_numeric_fields(Spec), ("version",)})
EXTREMES = [2**64, -(2**63), 1e308, -1.0, 1e-300, "0x" + "f" * 50_000]


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    if path[:2] == ("freeze", "schedule"):  # one step, thawing the embeddings
        step = {"at_step": 1, "unfreeze": {"embeddings": True}}
        data["freeze"]["schedule"] = [step]
        data, path = step, path[3:]
    for part in path[:-1]:
        if not isinstance(data.get(part), dict):
            data[part] = {}
        data = data[part]
    data[path[-1]] = value


@pytest.mark.parametrize("path", NUMERIC_FIELDS, ids=".".join)
def test_every_numeric_field_takes_any_number_without_an_internal_error(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    for i, value in enumerate(EXTREMES):
        data = yaml.safe_load((TINY / "freezegen.yaml").read_text(encoding="utf-8"))
        if path[0] == "hardware" and path[-1] != "memory_gib":
            data["hardware"] = {"gpu": "A100-80GB"}
        _set(data, path, "NUMBER" if isinstance(value, str) else value)
        folder = tmp_path / str(i)
        folder.mkdir()
        text = yaml.safe_dump(data, sort_keys=False).replace("NUMBER", str(value))
        _check_spec(_write(TINY, folder, text))
