"""FG501: torch.cuda.amp / torch.cpu.amp autocast and GradScaler are deprecated."""

from __future__ import annotations

import re
from functools import partial

import libcst as cst

from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import has_star, insert_first
from freezegen.diagnostics import Severity

DEPRECATED = {
    f"torch.{device}.amp.{kind}": (device, kind)
    for device in ("cuda", "cpu")
    for kind in ("autocast", "GradScaler")
}
# torch.cuda.amp.autocast(enabled, dtype, cache_enabled): torch.amp.autocast takes the device
# first and dtype second, so positional arguments become keywords.
_AUTOCAST_POSITIONS = ("enabled", "dtype", "cache_enabled")
_AMP_IMPORT = re.compile(rb"from\s+torch\.(cuda|cpu)\s+import\s[^\n]*\bamp\b")


class DeprecatedAmp(CheckRule):
    code = "FG501"
    name = "deprecated-amp"
    summary = (
        "torch.cuda.amp / torch.cpu.amp autocast and GradScaler are deprecated: use torch.amp."
    )
    severity = Severity.WARNING

    @classmethod
    def wanted(cls, data: bytes) -> bool:
        return b"cuda.amp" in data or b"cpu.amp" in data or _AMP_IMPORT.search(data) is not None

    fixable = True
    valid = (
        """\
import torch

scaler = torch.amp.GradScaler("cuda")
with torch.amp.autocast("cuda", dtype=torch.float16):
    pass
with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
    pass
""",
        """\
from torch.amp import GradScaler, autocast

scaler = GradScaler("cuda", enabled=True)
with autocast("cpu"):
    pass
""",
    )
    invalid = (
        """\
import torch

scaler = torch.cuda.amp.GradScaler()
with torch.cuda.amp.autocast(dtype=torch.float16):
    pass
""",
        """\
import torch.cuda.amp as amp

with amp.autocast(True):
    pass
""",
        """\
import torch
from torch.cuda.amp import GradScaler, autocast

scaler = GradScaler(init_scale=1024)
with autocast():
    pass
""",
        """\
import torch

with torch.cpu.amp.autocast():
    pass
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(c.qualified in DEPRECATED for c in outline.calls)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.ctx.names.qualified(node.func)
        if qualified not in DEPRECATED:
            return
        device, kind = DEPRECATED[qualified]
        torch_name = self.ctx.names.local_for("torch")
        fixable = torch_name is not None and not has_star(node)
        self.report(
            node,
            f'{qualified}(...) is deprecated: use torch.amp.{kind}("{device}", ...)',
            help=f'call torch.amp.{kind}("{device}", ...)'
            + ("" if fixable else " (with `import torch`, --fix can do it)"),
            fix=partial(_rewrite, f"{torch_name}.amp.{kind}", device, kind) if fixable else None,
        )


def _rewrite(callee: str, device: str, kind: str, call: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(call, cst.Call)
    args = list(call.args)
    if kind == "autocast":
        position = 0
        for i, arg in enumerate(args):
            if arg.keyword is None:
                keyword = cst.Name(_AUTOCAST_POSITIONS[position])
                args[i] = arg.with_changes(
                    keyword=keyword,
                    equal=cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""),
                        whitespace_after=cst.SimpleWhitespace(""),
                    ),
                )
                position += 1
    call = call.with_changes(func=cst.parse_expression(callee), args=args)
    return insert_first(call, f'"{device}"')
