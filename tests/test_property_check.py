"""Property tests: whatever Python-ish bytes reach ``check`` and ``codemod``, they answer with data.

Inputs: training scripts from a small grammar (imports, model / optimizer / scaler setup, loops,
accumulation windows, autocast blocks, functions, nested at random), then made hostile: a BOM,
latin-1 with or without a declaration, other line endings, control and separator characters,
brackets nested up to and past the limits, large literals within them, random bytes, truncation.
Properties: nothing raises and nothing says "internal error"; exit codes 0, 1 or 2; every finding
has a code like FG123 and an FG500 is either file-level (line 0) or located inside the file;
``check --fix`` and ``codemod`` output parses and a second run changes nothing; check's pre-pass
(freezegen/check/outline.py) never changes a finding.
"""

from __future__ import annotations

import ast
import re
from contextlib import ExitStack
from pathlib import Path
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from freezegen.check import check_source
from freezegen.check.api import check_paths
from freezegen.check.registry import all_rules
from freezegen.cli import app
from freezegen.codemod import CodemodOptions, codemod_source
from freezegen.codemod.api import codemod_paths
from freezegen.lint import Overrides
from freezegen.rules import source_lines

CODE = re.compile(r"FG\d{3}")
PROFILE = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

IMPORTS = [
    "import torch",
    "import torch.nn as nn",
    "from torch.cuda.amp import autocast, GradScaler",
    "from torch.utils.checkpoint import checkpoint",
    "import itertools",
]
SETUP = [
    "model = nn.Linear(8, 8)",
    "optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)",
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)",
    "scaler = GradScaler()",
    "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 10)",
    "state = torch.load(path)",
    "accum = 4",
    "model.embed.weight.requires_grad = False",
]
STEP = [
    "loss = model(x).sum()",
    "loss = loss / accum",
    "loss.backward()",
    "scaler.scale(loss).backward()",
    "optimizer.step()",
    "optimizer.zero_grad()",
    "scaler.step(optimizer)",
    "scaler.update()",
    "scheduler.step()",
    "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
    "scaler.unscale_(optimizer)",
    "out = checkpoint(block, x)",
    "x, y = x.to(device), y.to(device)  # move\x0c",
    "print(f'{step} {loss.item():.3f}')",
    "pass",
]
HEADERS = [
    "for x, y in loader:",
    "for step, (x, y) in enumerate(loader):",
    "if (step + 1) % accum == 0:",
    "with autocast():",
    "with torch.autocast('cuda', dtype=torch.bfloat16):",
    "def train(model, loader, optimizer, accum):",
    "while True:",
    "class Trainer:\n    def fit(self):",
]


def _block(lines: list[str], depth: int) -> list[str]:
    """Indent ``lines`` (each may hold several) ``depth`` levels."""
    pad = "    " * depth
    return [pad + part for line in lines for part in line.split("\n")]


statement = st.sampled_from(SETUP + STEP)
body = st.recursive(
    st.lists(statement.map(lambda s: [s]), min_size=1, max_size=4).map(
        lambda parts: [line for part in parts for line in part]
    ),
    lambda inner: st.tuples(st.sampled_from(HEADERS), inner, st.lists(statement, max_size=2)).map(
        lambda t: [t[0], *_block(t[1], 2 if t[0].startswith("class") else 1), *t[2]]
    ),
    max_leaves=12,
)


@st.composite
def scripts(draw) -> str:
    """A training script: imports, setup, a loop whose step varies (order, accumulation
    window, autocast, clipping, a scaler), maybe inside a function or method, with random
    statement soup around it."""
    imports = draw(st.lists(st.sampled_from(IMPORTS), min_size=1, max_size=4, unique=True))
    setup = draw(st.lists(st.sampled_from(SETUP), max_size=4))
    optimizer = draw(st.sampled_from(SETUP[1:3]))
    step = draw(st.permutations(["loss.backward()", "optimizer.step()", "optimizer.zero_grad()"]))
    extra = draw(st.lists(st.sampled_from(STEP), max_size=3))
    step = draw(st.permutations([*step, *extra]))
    if draw(st.booleans()):  # an accumulation window around the update
        update = [s for s in step if s.startswith(("optimizer.", "scaler.step", "scaler.up"))]
        rest = [s for s in step if s not in update]
        step = [*rest, "if (step + 1) % accum == 0:", *_block(update or ["pass"], 1)]
    forward = ["loss = model(x).sum()"]
    if draw(st.booleans()):
        forward = [draw(st.sampled_from(HEADERS[3:5])), *_block(forward, 1)]
    loop = [draw(st.sampled_from(HEADERS[:2])), *_block(forward + step, 1)]
    where = draw(st.sampled_from(["module", "function", "method"]))
    if where == "function":
        loop = ["def train(model, loader, optimizer, accum):", *_block(loop, 1)]
    elif where == "method":
        loop = ["class Trainer:", "    def fit(self):", *_block(loop, 2)]
    noise = draw(st.one_of(st.just([]), body))
    before = draw(st.booleans())
    lines = [*imports, "", *setup, optimizer, *(noise if before else []), *loop]
    return "\n".join([*lines, *([] if before else noise)]) + "\n"


scripts = scripts()


def _nest(text: str, depth: int) -> str:
    return text + "y = " + "(" * depth + "1" + ")" * depth + "\n"


def _literal(text: str, size: int) -> str:
    return text + "table = [" + ", ".join(str(i) for i in range(size)) + "]\n"


def _insert(text: str, at: int, what: str) -> str:
    at = at % (len(text) + 1)
    return text[:at] + what + text[at:]


def _same(source, n):
    return source


# sampled uniformly: the repeated identity keeps about half of the scripts intact
TEXT_MUTATIONS = st.sampled_from(
    [
        _same,
        _same,
        _same,
        _same,
        lambda text, n: text.replace("\n", "\r\n"),
        lambda text, n: text.replace("\n", "\r"),
        lambda text, n: _nest(text, n % 260),
        lambda text, n: _literal(text, n * 40),
        lambda text, n: "s = 'é\u2028\x85'  # freezegen: ignore\n" + text,
        lambda text, n: _insert(text, n * 7, "\x0c\x1c\u2029"),
        lambda text, n: _insert(text, n * 13, "\t  "),
        lambda text, n: text[: n * 11],
    ]
)
BYTE_MUTATIONS = st.sampled_from(
    [
        _same,
        _same,
        _same,
        _same,
        lambda data, n: b"\xef\xbb\xbf" + data,
        lambda data, n: b"# -*- coding: latin-1 -*-\n" + data + b"name = '\xe9'\n",
        lambda data, n: data + b"name = '\xe9'\n",  # latin-1 without a declaration
        lambda data, n: data[: n * 5] + b"\x00\xff\xfe" + data[n * 5 :],
        lambda data, n: data[: n * 3] + bytes([n % 256]) + data[n * 3 + 1 :],
    ]
)
sources = st.one_of(
    st.builds(
        lambda text, tm, bm, n: bm(tm(text, n).encode("utf-8", "surrogatepass"), n),
        scripts,
        TEXT_MUTATIONS,
        BYTE_MUTATIONS,
        st.integers(0, 255),
    ),
    st.binary(max_size=300),
)

CODEMOD_OPTIONS = st.sampled_from(
    [
        CodemodOptions(grad_accum_steps=4),
        CodemodOptions(precision="bf16"),
        CodemodOptions(freeze=("0.*",), trainable_only_optimizer=True),
        CodemodOptions(activation_checkpointing="HF", grad_accum_steps=2),
        CodemodOptions(precision="fp16", grad_accum_steps=8, trainable_only_optimizer=True),
    ]
)


def _assert_findings_located(data: bytes, diagnostics: list) -> None:
    try:
        lines = len(source_lines(data.decode("utf-8-sig")))
    except UnicodeDecodeError:
        lines = None  # latin-1: line numbers still count \n, but we cannot recount them here
    for d in diagnostics:
        assert CODE.fullmatch(d.code) and d.message, d
        if d.line == 0:
            assert d.code == "FG500" and d.col == 0, d  # file-level
            continue
        assert d.line >= 1 and d.col >= 1, d
        if lines is not None:
            assert d.line <= lines, (d, lines)


def _parses(text: str) -> None:
    ast.parse(text)


@PROFILE
@given(sources, st.booleans())
def test_check_answers_every_source_with_located_findings(data: bytes, unsafe_fixes: bool):
    result = check_source(data, "train.py", fix=True, unsafe_fixes=unsafe_fixes)
    _assert_findings_located(data, result.diagnostics)
    if result.fixed_source is not None:
        _parses(result.fixed_source)
        again = check_source(result.fixed_source, "train.py", fix=True, unsafe_fixes=unsafe_fixes)
        assert again.fixed_source is None  # fixes are idempotent
        assert again.diagnostics == result.diagnostics


@PROFILE
@given(scripts)
def test_the_pre_pass_never_hides_a_finding(text: str):
    """freezegen/check/outline.py only keeps libcst away: with every rule's ``possible``
    forced True the same findings and fixes come out."""
    fast = check_source(text, "train.py", fix=True, unsafe_fixes=True)
    with ExitStack() as stack:
        for rule in all_rules():
            always = classmethod(lambda cls, outline: True)
            stack.enter_context(patch.object(rule, "possible", always))
        slow = check_source(text, "train.py", fix=True, unsafe_fixes=True)
    assert (fast.diagnostics, fast.fixed_source) == (slow.diagnostics, slow.fixed_source)


@settings(PROFILE, max_examples=25)
@given(sources, CODEMOD_OPTIONS)
def test_codemod_output_parses_and_is_idempotent(data: bytes, options: CodemodOptions):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # codemod reads UTF-8 files; the API test below covers the others
    result = codemod_source(text, options, "train.py")
    for problem in result.problems:
        assert problem.line >= 0 and problem.text, problem
    if result.changed:
        assert result.new_source is not None
        _parses(result.new_source)
        again = codemod_source(result.new_source, options, "train.py")
        assert not again.changed, "a second codemod run changed the file again"


@settings(PROFILE, max_examples=8)
@given(st.lists(sources, min_size=1, max_size=3), CODEMOD_OPTIONS)
def test_the_apis_take_files_on_disk(tmp_path_factory, files: list[bytes], options):
    folder = tmp_path_factory.mktemp("scripts")
    for i, data in enumerate(files):
        (folder / f"m{i}.py").write_bytes(data)
    report = check_paths([folder], Overrides(use_config=False), jobs=1)
    assert report.files == len(files)
    for i, data in enumerate(files):
        found = [d for d in report.diagnostics if Path(d.path).name == f"m{i}.py"]
        _assert_findings_located(data, found)
    codemod = codemod_paths([folder], options)
    assert len(codemod.results) == len(files)


@settings(PROFILE, max_examples=5)
@given(st.lists(sources, min_size=1, max_size=3))
def test_the_cli_exits_0_1_or_2_and_never_with_an_internal_error(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("cli")
    for i, data in enumerate(files):
        (folder / f"m{i}.py").write_bytes(data)
    runner = CliRunner()
    for args in (
        ["check", str(folder), "--no-config"],
        ["check", str(folder), "--no-config", "--format", "sarif", "-j", "2"],
        ["codemod", str(folder), "--grad-accum-steps", "4"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 1, 2), (args, result.output, result.exception)
        assert "internal error" not in result.output.lower(), (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert sorted(p.name for p in Path(folder).iterdir()) == [f"m{i}.py" for i in range(len(files))]
