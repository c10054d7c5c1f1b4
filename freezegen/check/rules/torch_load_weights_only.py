"""FG507: torch.load without weights_only."""

from __future__ import annotations

import re

import libcst as cst

from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import has_star, keyword, keyword_fix
from freezegen.diagnostics import Severity

_IMPORT = re.compile(rb"from\s+torch\s+import\s[^\n]*\bload\b")


class TorchLoadWeightsOnly(CheckRule):
    code = "FG507"
    name = "torch-load-weights-only"
    summary = "torch.load called without weights_only: pass weights_only=True."
    severity = Severity.WARNING

    @classmethod
    def wanted(cls, data: bytes) -> bool:
        if b"load" not in data:
            return False
        return (
            b"torch.load" in data
            or b"import torch as" in data  # th.load
            or _IMPORT.search(data) is not None
        )

    fixable = True
    valid = (
        """\
import torch

state = torch.load("ckpt.pt", map_location="cpu", weights_only=True)
legacy = torch.load("old.pt", weights_only=False)  # trusted file with pickled objects
""",
        """\
import json

import torch

config = json.load(open("config.json"))
tensors = torch.ones(3)
""",
    )
    invalid = (
        """\
import torch

state = torch.load("ckpt.pt", map_location="cpu")
""",
        """\
from torch import load

model_state = load(
    "ckpt.pt",
    map_location="cpu",
)
""",
    )

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.names.qualified(node.func) != "torch.load":
            return
        if keyword(node, "weights_only") or has_star(node):
            return
        # weights_only=True refuses a custom pickle_module: report, but leave it to a person
        fixable = keyword(node, "pickle_module") is None
        self.report(
            node,
            "torch.load() without weights_only: pass weights_only=True so that loading a "
            "checkpoint cannot run code (the default since torch 2.6, not before)",
            help="pass weights_only=True"
            + ("" if fixable else " (and drop pickle_module, which it refuses)"),
            fix=keyword_fix("weights_only", "True") if fixable else None,
        )
