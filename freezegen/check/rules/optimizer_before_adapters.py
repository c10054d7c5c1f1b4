"""FG511: an optimizer built over a model's parameters before adapters are attached to it."""

from __future__ import annotations

import libcst as cst

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import dotted
from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import keyword, positional

_ATTACH_FUNCTIONS = ("get_peft_model", "inject_adapter_in_model")
"""peft's calls that add adapters to a model handed to them (the model, or the config then
the model)."""
_ATTACH_METHODS = ("add_adapter", "load_adapter")
"""Methods that add adapters to the model they are called on (transformers' PEFT integration)."""


class OptimizerBeforeAdapters(CheckRule):
    code = "FG511"
    name = "optimizer-before-adapters"
    summary = (
        "The optimizer is built before adapters are attached: it holds the (now frozen) base "
        "parameters and none of the adapters', so the adapters never train."
    )
    needles = (b"parameters",)
    valid = (
        """\
import torch
from peft import LoraConfig, get_peft_model

model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
""",
        """\
import torch

optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
reference.add_adapter(config)  # another model: this optimizer does not train it
""",
    )
    invalid = (
        """\
import torch
from peft import LoraConfig, get_peft_model

optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
""",
        """\
from torch.optim import SGD


def setup(model, config):
    optimizer = SGD(model.parameters(), lr=0.1)
    model.add_adapter(config)
    return model, optimizer
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(
            (c.name or "").rsplit(".", 1)[-1] in (*_ATTACH_FUNCTIONS, *_ATTACH_METHODS)
            or (c.attribute or "") in _ATTACH_METHODS
            for c in outline.calls
        )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        # per scope: the optimizers over a model's parameters built so far, by model name
        self._built: list[dict[str, tuple[cst.Call, str]]] = [{}]

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._built.append({})

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._built.pop()

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.ctx.names.qualified(node.func) or dotted(node.func) or ""
        callee = qualified.rsplit(".", 1)[-1]
        if callee in OPTIMIZERS:
            params = positional(node)[:1] or [keyword(node, "params")]
            owner = _owner(params[0].value) if params[0] is not None else None
            if owner is not None:
                self._built[-1].setdefault(owner, (node, callee))
            return
        model = None
        if callee in _ATTACH_FUNCTIONS:
            args = positional(node)
            which = 0 if callee == "get_peft_model" else 1
            arg = args[which] if len(args) > which else keyword(node, "model")
            model = dotted(arg.value) if arg is not None else None
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _ATTACH_METHODS:
            model = dotted(node.func.value)
        built = self._built[-1].get(model) if model is not None else None
        if built is None:
            return
        optimizer, name = built
        attach = self.ctx.module.code_for_node(node.func)
        self.report(
            optimizer,
            f"{name} is built over `{model}`'s parameters before {attach}(...) below attaches "
            "adapters to it: it holds the base parameters, which the adapters leave frozen, and "
            "none of the adapter ones, so the adapters never train",
            help=f"build the optimizer after {attach}(...), over the parameters that require grad",
        )


def _owner(expr: cst.BaseExpression) -> str | None:
    """The model whose parameters ``expr`` hands over: ``model.parameters()``, a comprehension
    or generator over it, ``model.named_parameters()``."""
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)):
        expr = expr.for_in.iter
    if (
        isinstance(expr, cst.Call)
        and isinstance(expr.func, cst.Attribute)
        and expr.func.attr.value in ("parameters", "named_parameters")
    ):
        return dotted(expr.func.value)
    return None
