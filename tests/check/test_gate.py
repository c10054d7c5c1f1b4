"""The gate before libcst: pathological files end as one FG500 finding, quickly, never a crash.

Each input here crashed, hung or exhausted memory before the gate (2,000 nested brackets:
SIGSEGV in libcst's parser; 4,000 chained lambdas: SIGSEGV; 10,000 ``not``: recursion; a
200,000-element literal: 18 s and 0.9 GB in check, minutes in codemod).
"""

from __future__ import annotations

import pytest

from freezegen.check import check_source, gate
from freezegen.codemod.engine import codemod_source
from freezegen.codemod.options import CodemodOptions
from freezegen.pysource import MAX_SOURCE_BYTES

HEAD = "import torch\nstate = torch.load(p)\nloss.backward()\n"
CODEMOD = CodemodOptions(grad_accum_steps=2, precision="bf16")

PATHOLOGICAL = {
    "2000-brackets": ("y = " + "(" * 2000 + "1" + ")" * 2000, "too many nested parentheses"),
    "4000-lambdas": ("y = " + "lambda: " * 4000 + "0", "nested too deeply"),
    "10000-not": ("y = " + "not " * 10000 + "x", "nested too deeply"),
    "101-indents": (
        "".join(" " * i + "if x:\n" for i in range(101)) + " " * 101 + "pass",
        "too many levels of indentation",
    ),
    "200k-literal": ("y = [" + "0, " * 200_000 + "]", "syntax nodes"),
    "100-subscripts": ("y = " + "x[" * 100 + "0" + "]" * 100, "levels deep"),
    "too-large": ("#" * MAX_SOURCE_BYTES, "file too large"),
}


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_files_are_one_fg500_in_check(name):
    body, message = PATHOLOGICAL[name]
    result = check_source(HEAD + body + "\n", "deep.py", fix=True)
    (found,) = result.diagnostics
    assert found.code == "FG500" and message in found.message, found
    assert "leave the file out of the paths given" in (found.fix or "")
    assert result.fixed_source is None


@pytest.mark.parametrize(
    "name", [n for n in PATHOLOGICAL if n not in ("200k-literal", "100-subscripts")]
)
def test_files_libcst_will_not_see_meet_pythons_own_limits(name):
    body, message = PATHOLOGICAL[name]
    (found,) = check_source("import jax\n" + body + "\n", "deep.py").diagnostics
    assert found.code == "FG500" and message in found.message, found


@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_pathological_files_are_a_problem_in_codemod(name):
    body, message = PATHOLOGICAL[name]
    result = codemod_source(HEAD + body + "\n", CODEMOD, "deep.py")
    assert not result.changed
    (problem,) = result.problems
    assert message in problem.text


def test_too_deep_is_located_at_the_first_node_past_the_limit():
    body = "y = " + "[" * (gate.MAX_NESTING + 5) + "]" * (gate.MAX_NESTING + 5)
    (found,) = check_source(HEAD + "é = 1\n" + body + "\n", "deep.py").diagnostics
    assert found.line == 5 and 5 < found.col < 5 + gate.MAX_NESTING, found


NESTED = {
    "subscript": lambda n: "x[" * n + "0" + "]" * n,
    "list": lambda n: "[" * n + "]" * n,
    "keyword-call": lambda n: "f(a=" * n + "1" + ")" * n,
    "generator": lambda n: "(x for x in " * n + "y" + ")" * n,
    "binary": lambda n: "+".join(["x"] * n),
    "attribute": lambda n: "x" + ".a" * n,
    "conditional": lambda n: "a if b else " * n + "c",
    "power": lambda n: "**".join(["x"] * n),
}


def _deepest_accepted(build) -> str:
    """The source with the deepest ``build(n)`` that the gate still accepts."""
    n = 1
    while True:
        source = f"{HEAD}y = {build(n + 1)}\n"
        try:
            gate.bound(gate.parse(source))
        except gate.Rejected:
            return f"{HEAD}y = {build(n)}\n"
        n += 1


@pytest.mark.parametrize("kind", NESTED)
def test_the_nesting_limit_leaves_libcst_room(kind):
    """Just inside the limit, check (with fixes) and codemod run every visitor without a
    RecursionError (which the engines would report as "too complex")."""
    source = _deepest_accepted(NESTED[kind])
    checked = check_source(source, "deep.py", fix=True)
    assert checked.parsed and not any(d.code == "FG500" for d in checked.diagnostics)
    rewritten = codemod_source(source, CODEMOD, "deep.py")
    assert not any("too complex" in p.text for p in rewritten.problems)


@pytest.mark.parametrize(
    ("data", "message", "line", "col"),
    [
        (b"x = 1\ny = '\xff'\n", "cannot decode", 2, 6),
        (b"# -*- coding: nonsense -*-\n", "cannot decode", 1, 1),
        (b"\xef\xbb\xbf# coding: latin-1\n", "cannot decode", 1, 1),
        (b"x = 1\r\ny = 2\x00\n", "null character", 2, 6),
        (b"def f(:\n", "syntax error", 1, 7),
    ],
)
def test_what_python_cannot_read_is_located(data, message, line, col):
    with pytest.raises(gate.Rejected) as caught:
        gate.parse(data)
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)


def test_bom_and_declared_encodings_are_python():
    assert gate.parse(b"\xef\xbb\xbfx = 1\n").text == "x = 1\n"
    assert gate.parse("\ufeffx = 1\n").text == "x = 1\n"  # codemod hands over decoded text
    assert gate.parse(b"# coding: latin-1\nx = '\xff'\n").text.endswith("'\xff'\n")
