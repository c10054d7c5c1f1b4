"""FG506: torch.utils.checkpoint without an explicit use_reentrant."""

from __future__ import annotations

import re

import libcst as cst

from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import has_star, keyword, keyword_fix
from freezegen.diagnostics import Severity

_IMPORT = re.compile(rb"from\s+torch\.utils\s+import\s[^\n]*\bcheckpoint\b")
CHECKPOINTS = (
    "torch.utils.checkpoint.checkpoint",
    "torch.utils.checkpoint.checkpoint_sequential",
)


class CheckpointUseReentrant(CheckRule):
    code = "FG506"
    name = "checkpoint-use-reentrant"
    summary = "torch.utils.checkpoint called without use_reentrant: pass use_reentrant=False."
    severity = Severity.WARNING

    @classmethod
    def wanted(cls, data: bytes) -> bool:
        return b"utils.checkpoint" in data or _IMPORT.search(data) is not None

    fixable = True
    valid = (
        """\
import torch
from torch.utils.checkpoint import checkpoint


def forward(blocks, x):
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False)
    return x
""",
        """\
import torch


def forward(block, x, **kwargs):
    # the caller decides: use_reentrant may be in kwargs
    return torch.utils.checkpoint.checkpoint(block, x, **kwargs)


def save(model):
    torch.save(model.state_dict(), "checkpoint.pt")
""",
    )
    invalid = (
        """\
import torch
from torch.utils.checkpoint import checkpoint


def forward(blocks, x):
    for block in blocks:
        x = checkpoint(block, x)
    return x
""",
        """\
import torch.utils.checkpoint as ckpt


def forward(layers, x):
    return ckpt.checkpoint_sequential(layers, 2, x)
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(
            c.qualified in CHECKPOINTS and c.keyword("use_reentrant") is None and not c.star
            for c in outline.calls
        )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.ctx.names.qualified(node.func)
        if qualified not in CHECKPOINTS or keyword(node, "use_reentrant") or has_star(node):
            return
        function = qualified.rsplit(".", 1)[1]
        self.report(
            node,
            f"{function}() without use_reentrant: torch warns and will require it; "
            "use_reentrant=False is the recommended variant (and works behind frozen layers)",
            help="pass use_reentrant=False",
            fix=keyword_fix("use_reentrant", "False"),
        )
