"""Property tests: whatever text reaches ``lint_text``, it answers with located diagnostics.

Inputs: (a) the shipped examples, mutated (keys deleted, misspelt, inserted or duplicated in the
text, values replaced by random data) and dumped back to YAML; (b) arbitrary text, YAML-ish
token soup and arbitrary bytes. Properties: nothing raises, every diagnostic has a code like
FG123, a message, line >= 1 and col >= 1 inside the input, and the exit code is 0 or 1.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from freezegen.diagnostics import Diagnostic
from freezegen.lint import lint_text
from freezegen.lint.engine import LintReport
from freezegen.spec import load
from freezegen.spec.models import Spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(REPO.glob("examples/**/*.yaml"))
CODE = re.compile(r"FG\d{3}")

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _example_data(path: Path) -> dict[str, Any]:
    result = load(path)
    assert result.ok and result.document is not None, (path, result.diagnostics)
    return result.document.data


BASES: list[tuple[Path, dict[str, Any]]] = [(p.parent, _example_data(p)) for p in EXAMPLES]


def _schema_keys() -> list[str]:
    """Every key name the spec models know (misspelling real keys finds more than noise)."""
    from freezegen.spec._validate import _models_in

    seen: set[str] = set()
    todo = [Spec]
    done: set[type] = set()
    while todo:
        model = todo.pop()
        if model in done:
            continue
        done.add(model)
        for name, info in model.model_fields.items():
            seen.add(info.alias or name)
            todo.extend(_models_in(info.annotation))
    return sorted(seen)


KEYS = _schema_keys()


def check(found: list[Diagnostic], lines: list[str]) -> int:
    """Assert the properties of one lint run over input ``lines``; return the exit code."""
    lines = lines or [""]
    for d in found:
        assert CODE.fullmatch(d.code), d
        assert isinstance(d.message, str) and d.message.strip(), d
        assert 1 <= d.line <= len(lines), (d, len(lines))
        assert 1 <= d.col <= len(lines[d.line - 1]) + 1, (d, lines[d.line - 1])
    exit_code = 1 if LintReport(diagnostics=found).failed else 0
    assert exit_code in (0, 1)
    return exit_code


def text_lines(text: str) -> list[str]:
    # str.splitlines breaks where libyaml does (\n, \r, NEL, LS, PS) and on a few control
    # characters that YAML refuses anyway
    return text.removeprefix("\ufeff").splitlines()


def byte_lines(raw: bytes) -> list[str]:
    """Lines of undecodable input as FG006 counts them: split at b"\n" only."""
    text = raw.decode("utf-8", errors="replace")
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return text.split("\n")
    return text_lines(text) if b"\x00" not in raw else text.split("\n")


# --- strategies ------------------------------------------------------------------------------

# Strings: random text plus words the schema and YAML give meaning to.
WORDS = st.sampled_from(
    [
        "",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "~/x",
        "~no-such-user/x",
        "true",
        "0x10",
        "0o7",
        "2e-5",
        ".inf",
        "-.inf",
        ".nan",
        "1_000",
        "gpt2",
        "llama-3-8b",
        "tinyllama-1.1b",
        "A100-80GB",
        "T4",
        "fp16",
        "bf16",
        "bf16-pure",
        "sdpa",
        "eager",
        "adamw",
        "fused",
        "cosine",
        "synthetic",
        "jsonl",
        "all",
        "every-2",
        "every-0",
        "0-5",
        "5-0",
        "0-3,8",
        "*.bias",
        "*.ln_f.*",
        "./config.json",
        ".",
        "..",
        "/",
        "/nonexistent/x",
        "pkg.mod:build",
        "auto",
        "never",
        "ddp",
        "fsdp",
        "<<",
        "*",
        "&",
        "!",
        "#",
        "- x",
        "a: b",
        "{",
        "[",
        "'",
        '"',
        "\\",
        "\t",
        "\n",
        "\x00",
        "\x85",
        "\u2028",
        "\ufeff",
        "é",
        "\U0001f600",
    ]
)
STRINGS = WORDS | st.text(max_size=24)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2, 4096])
    | st.floats(allow_nan=True, allow_infinity=True)
    | STRINGS
)
KEY_NAMES = st.sampled_from(KEYS) | STRINGS
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEY_NAMES, inner, max_size=4),
    max_leaves=12,
)


def _containers(node: Any, out: list[Any]) -> list[Any]:
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            _containers(value, out)
    elif isinstance(node, list):
        out.append(node)
        for value in node:
            _containers(value, out)
    return out


@st.composite
def typo(draw: st.DrawFn, word: str) -> str:
    if not word:
        return draw(st.text(min_size=1, max_size=3))
    i = draw(st.integers(0, len(word) - 1))
    kind = draw(st.sampled_from(["drop", "swap", "insert", "replace", "case", "dash"]))
    if kind == "drop":
        return word[:i] + word[i + 1 :] or word + "x"
    if kind == "swap" and len(word) > 1:
        j = min(i + 1, len(word) - 1)
        return word[:i] + word[j] + word[i] + word[j + 1 :] if i != j else word[::-1]
    if kind == "case":
        return word.upper() if word != word.upper() else word.lower() + "X"
    if kind == "dash":
        return word.replace("_", "-") if "_" in word else word + "_"
    char = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_-0 "))
    if kind == "insert":
        return word[:i] + char + word[i:]
    return word[:i] + char + word[i + 1 :]


@st.composite
def mutate(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """Apply one random structural mutation to (a copy of) ``data``."""
    containers = _containers(data, [])
    node = draw(st.sampled_from(containers))
    op = draw(st.sampled_from(["delete", "rename", "replace", "insert"]))
    if isinstance(node, list):
        if not node or op == "insert":
            node.insert(draw(st.integers(0, len(node))), draw(VALUES))
        elif op == "delete":
            del node[draw(st.integers(0, len(node) - 1))]
        else:
            node[draw(st.integers(0, len(node) - 1))] = draw(VALUES)
        return data
    if not node or op == "insert":
        node[draw(KEY_NAMES)] = draw(VALUES)
        return data
    key = draw(st.sampled_from(sorted(node)))
    if op == "delete":
        del node[key]
    elif op == "rename":
        node[draw(typo(str(key)))] = node.pop(key)
    else:
        node[key] = draw(VALUES)
    return data


KEY_LINE = re.compile(r"^\s*(- )?[^\s#:][^:]*:( |$)")


@st.composite
def duplicate_line(draw: st.DrawFn, text: str) -> str:
    """Copy a ``key: ...`` line right after itself (a duplicate key, in the text)."""
    lines = text.splitlines(keepends=True)
    candidates = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
    if not candidates:
        return text
    i = draw(st.sampled_from(candidates))
    copy_ = lines[i]
    if copy_.lstrip().startswith("- "):  # same key inside the same list item
        indent = len(copy_) - len(copy_.lstrip())
        copy_ = " " * (indent + 2) + copy_.lstrip()[2:]
    return "".join([*lines[: i + 1], copy_, *lines[i + 1 :]])


@st.composite
def mutated_spec(draw: st.DrawFn) -> tuple[Path, str]:
    folder, data = draw(st.sampled_from(BASES))
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 4))):
        data = draw(mutate(data))
    style = draw(st.sampled_from([False, None, True]))
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=style, allow_unicode=True)
    if draw(st.booleans()):
        text = draw(duplicate_line(text))
    return folder, text


TOKENS = st.sampled_from(
    [
        "version",
        "model",
        "batch",
        "freeze",
        "layers",
        "first",
        "preset",
        "gpt2",
        "seq_len",
        "micro_batch_size",
        ":",
        ": ",
        " ",
        "  ",
        "\n",
        "\n  ",
        "\n    ",
        "- ",
        "-",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a",
        "*a",
        "&b",
        "*b",
        "<<: ",
        "!!str ",
        "!!int ",
        "!!map ",
        "!foo ",
        "? ",
        "'",
        '"',
        "#",
        "---",
        "...",
        "|",
        ">",
        "%YAML 1.2\n",
        "1",
        "0",
        "-1",
        "2e-5",
        "yes",
        "~",
        "null",
        "\t",
        "\r\n",
        "\\",
        "\\0",
        "é",
        "\x85",
        "\ufeff",
    ]
)
YAMLISH = st.lists(TOKENS, max_size=60).map("".join)


# --- (a) mutated examples ------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_examples_round_trip_through_dump_cleanly(path: Path) -> None:
    """The mutation harness's starting point: a dumped example still has no schema errors."""
    text = yaml.safe_dump(_example_data(path), sort_keys=False)
    found = lint_text(text, str(path), base_dir=path.parent)
    assert not [d for d in found if d.code.startswith("FG0")], found


@FAST
@given(mutated_spec())
def test_mutated_examples_lint_without_raising(case: tuple[Path, str]) -> None:
    folder, text = case
    found = lint_text(text, "mutated.yaml", base_dir=folder)
    check(found, text_lines(text))


@FAST
@given(st.sampled_from(BASES), st.data())
def test_misspelt_known_key_is_reported_with_did_you_mean(
    base: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    folder, spec = base
    spec = copy.deepcopy(spec)
    parents = [node for node in _containers(spec, []) if isinstance(node, dict) and node]
    node = data.draw(st.sampled_from(parents))
    key = data.draw(st.sampled_from(sorted(node)))
    wrong = data.draw(typo(key).filter(lambda w: w not in KEYS and w.strip() == w and w))
    node[wrong] = node.pop(key)
    text = yaml.safe_dump(spec, sort_keys=False)
    found = lint_text(text, "typo.yaml", base_dir=folder)
    check(found, text_lines(text))
    unknown = [d for d in found if d.code == "FG002"]
    assert unknown, found
    assert all(d.line >= 1 for d in unknown)


# --- (b) arbitrary input -------------------------------------------------------------------


@settings(FAST, max_examples=300)
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    check(lint_text(text, "random.yaml"), text_lines(text))


@settings(FAST, max_examples=300)
@given(YAMLISH)
@example("? version")  # an empty value at the very end: libyaml places it past the last line
@example("\ufeff[")  # a BOM is no column
@example(" \x85version")  # NEL is a line break to libyaml (YAML 1.1)
@example("a: &x [*x]")
@example("a: 1\n---\nb: 2")
def test_yamlish_token_soup(text: str) -> None:
    check(lint_text(text, "soup.yaml"), text_lines(text))


@settings(FAST, max_examples=300)
@given(st.binary(max_size=400))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(lint_text(raw, "random.yaml"), byte_lines(raw))


@settings(FAST, max_examples=150)
@given(YAMLISH, st.binary(min_size=1, max_size=8), st.integers(0, 10_000))
def test_yamlish_bytes_with_garbage(text: str, garbage: bytes, at: int) -> None:
    raw = text.encode()
    at = at % (len(raw) + 1)
    raw = raw[:at] + garbage + raw[at:]
    check(lint_text(raw, "garbage.yaml"), byte_lines(raw))


# --- the real command line -----------------------------------------------------------------


@pytest.mark.slow
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(YAMLISH | st.text(max_size=200) | mutated_spec().map(lambda case: case[1]))
def test_cli_on_random_text_exits_0_or_1_without_traceback(text: str) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("FREEZEGEN_DEBUG", None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.freezegen.yaml"
        path.write_text(text, encoding="utf-8", newline="")
        proc = subprocess.run(
            [sys.executable, "-m", "freezegen", "lint", str(path), "--no-config"],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=60,
        )
    assert proc.returncode in (0, 1), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
