"""Statement edits and expression swaps on one tree (codemod/edits.py)."""

from __future__ import annotations

import libcst as cst

from freezegen.codemod import edits


def test_a_swap_lands_in_a_function_whose_body_another_edit_changes():
    module = cst.parse_module("def train(steps=1):\n    step()\n    log()\n")
    function = module.body[0]
    assert isinstance(function, cst.FunctionDef)
    default = function.params.params[0].default
    first = function.body.body[0]
    assert default is not None
    new = edits.apply(
        module,
        {id(first): edits.before(edits.statements("prepare()\n"))},
        {id(default): cst.Integer("4")},
    )
    assert new.code == "def train(steps=4):\n    prepare()\n    step()\n    log()\n"
