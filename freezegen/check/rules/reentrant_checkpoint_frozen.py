"""FG510: reentrant activation checkpointing in a script that freezes parameters."""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import keyword
from freezegen.check.rules._freezing import FreezeTracker
from freezegen.check.rules.checkpoint_use_reentrant import CHECKPOINTS

_ENABLES = ("gradient_checkpointing_enable", "activation_checkpointing_enable")


class ReentrantCheckpointFrozen(CheckRule):
    code = "FG510"
    name = "reentrant-checkpoint-frozen"
    summary = (
        "Reentrant checkpointing in a script that freezes parameters: a block whose inputs are "
        "all frozen gets no gradient."
    )
    needles = (b"requires_grad", b"use_reentrant", b"True")
    valid = (
        """\
import torch
from torch.utils.checkpoint import checkpoint

model.embeddings.requires_grad_(False)


def forward(blocks, x):
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False)
    return x
""",
        """\
import torch
from torch.utils.checkpoint import checkpoint


# nothing is frozen: every block's input requires grad through the embeddings
def forward(blocks, x):
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=True)
    return x
""",
    )
    invalid = (
        """\
import torch
from torch.utils.checkpoint import checkpoint

for p in model.embeddings.parameters():
    p.requires_grad = False


def forward(blocks, x):
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=True)
    return x
""",
        """\
import torch
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("./local-model")
model.model.embed_tokens.requires_grad_(False)
model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
""",
        """\
import torch
from torch.utils.checkpoint import checkpoint


def freeze(module, frozen=True):
    module.requires_grad_(not frozen)


class Encoder(torch.nn.Module):
    def forward(self, x):
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=True)
        return x


freeze(encoder.embeddings)
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return outline.may_freeze and any(
            (c.qualified in CHECKPOINTS and c.keyword("use_reentrant") is not None)
            or c.method in _ENABLES
            for c in outline.calls
        )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._freezing = FreezeTracker()
        self._reentrant: list[cst.CSTNode] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._freezing.enter(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._freezing.leave()

    def visit_Assign(self, node: cst.Assign) -> None:
        self._freezing.assign(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._freezing.call(node)
        if self.ctx.names.qualified(node.func) in CHECKPOINTS:
            arg = keyword(node, "use_reentrant")
            if arg is not None and _is_true(arg.value):
                self._reentrant.append(arg)
        elif (dotted(node.func) or "").rsplit(".", 1)[-1] in _ENABLES:
            for name in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"):
                arg = keyword(node, name)
                if arg is not None and isinstance(arg.value, cst.Dict):
                    self._reentrant.extend(_reentrant_entries(arg.value))

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._freezing.freezes:
            return
        for node in self._reentrant:
            self.report(
                node,
                "reentrant checkpointing in a script that freezes parameters: when every input "
                "of a checkpointed block is frozen (the first trainable block above frozen "
                "embeddings), the reentrant variant returns an output without grad and the "
                "block's parameters silently get no gradient",
                help="use use_reentrant=False",
            )


def _is_true(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "True"


def _reentrant_entries(d: cst.Dict) -> list[cst.CSTNode]:
    return [
        item
        for item in d.elements
        if isinstance(item, cst.DictElement)
        and isinstance(item.key, cst.SimpleString)
        and item.key.evaluated_value == "use_reentrant"
        and _is_true(item.value)
    ]
