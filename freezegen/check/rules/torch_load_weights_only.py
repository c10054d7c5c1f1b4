"""FG507: torch.load without weights_only.

``weights_only=True`` makes torch.load refuse anything but tensors, primitive values and
containers of them: a pickled whole model, a numpy array or an argparse Namespace then raise
UnpicklingError, and it refuses the whole file, not only the part a script reads. So the fix is
safe only where the file shows what the whole loaded object is, and that is the case when

- the load is the argument of ``.load_state_dict(...)``: the object is a state dict
  (``model.load_state_dict(torch.load(p))``);
- the load is assigned to a name, and every other use of that name in the function (or the
  module) is such an argument (``state = torch.load(p)`` then ``model.load_state_dict(state)``);
- the file itself writes the path loaded, and every ``torch.save`` to it saves a
  ``.state_dict()`` or a dict of those and literals (then ``ckpt["model"]`` is fine). Paths match
  by their text: a string literal anywhere in the file, any other expression only within the
  same function.

A checkpoint read through string keys (``ckpt = torch.load(p)``, ``ckpt["model"]``) is not
enough: its other entries, read or not, may hold an ``argparse.Namespace`` or a numpy random
state. Everywhere else the finding stays with an unsafe fix that ``--unsafe-fixes`` applies.
(A module's ``get_extra_state`` may put any object in a state dict; that is rare enough to leave.)
"""

from __future__ import annotations

import re
from collections import Counter

import libcst as cst

from freezegen.check.outline import Outline
from freezegen.check.rule import CheckRule
from freezegen.check.rules._calls import has_star, keyword, keyword_fix, positional
from freezegen.diagnostics import Severity

_IMPORT = re.compile(rb"from\s+torch\s+import\s[^\n]*\bload\b")
_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)
UNSAFE_HELP = (
    "pass weights_only=True if the file holds only tensors and containers of them, or "
    "weights_only=False for a trusted file with pickled objects (--fix leaves it: nothing here "
    "shows which, and weights_only=True raises UnpicklingError on a pickled model or numpy array)"
)

Scope = int
"""The id of the enclosing function definition (0 for the module)."""


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

model.load_state_dict(torch.load("ckpt.pt", map_location="cpu"))
""",
        """\
from torch import load


def resume(model, path):
    model_state = load(
        path,
        map_location="cpu",
    )
    model.load_state_dict(model_state)
""",
        """\
import torch

# a whole pickled model: weights_only=True would refuse it, so --fix leaves it
model = torch.load("model.pt", map_location="cpu")
model.eval()
""",
    )

    @classmethod
    def possible(cls, outline: Outline) -> bool:
        return any(
            c.qualified == "torch.load" and c.keyword("weights_only") is None and not c.star
            for c in outline.calls
        )

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._scopes: list[Scope] = [0]
        self._loads: list[tuple[cst.Call, Scope]] = []
        self._fed_calls: set[int] = set()
        """torch.load calls that are arguments of load_state_dict."""
        self._fed_names: Counter[tuple[Scope, str]] = Counter()
        self._uses: Counter[tuple[Scope, str]] = Counter()
        self._not_uses: set[int] = set()
        """Name nodes that are attribute or keyword names, not variables."""
        self._assigned: dict[int, tuple[Scope, str]] = {}
        """torch.load call -> the name it is assigned to."""
        self._saves: dict[str, list[bool]] = {}
        """Path key -> for each torch.save to it, whether it saves a state dict."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(id(node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._not_uses.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._not_uses.add(id(node.keyword))

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) not in self._not_uses:
            for scope in self._scopes:  # a nested function's use counts for its outer ones
                self._uses[scope, node.value] += 1

    def visit_Assign(self, node: cst.Assign) -> None:
        if (
            len(node.targets) == 1
            and isinstance(node.targets[0].target, cst.Name)
            and isinstance(node.value, cst.Call)
        ):
            self._assigned[id(node.value)] = (self._scopes[-1], node.targets[0].target.value)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.ctx.names.qualified(node.func)
        if qualified == "torch.load":
            self._loads.append((node, self._scopes[-1]))
        elif qualified == "torch.save":
            saved, path = _argument(node, 0, "obj"), _argument(node, 1, "f")
            if saved is not None and path is not None:
                shaped = _is_state_dict(saved)
                self._saves.setdefault(self._path_key(path), []).append(shaped)
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "load_state_dict":
            fed = _argument(node, 0, "state_dict")
            if isinstance(fed, cst.Call):
                self._fed_calls.add(id(fed))
            elif isinstance(fed, cst.Name):
                self._fed_names[self._scopes[-1], fed.value] += 1

    def leave_Module(self, original_node: cst.Module) -> None:
        for node, scope in self._loads:
            if keyword(node, "weights_only") or has_star(node):
                continue
            if keyword(node, "pickle_module") is not None:
                # weights_only=True refuses a custom pickle_module: report, leave it to a person
                help, safe, fix = "pass weights_only=True (and drop pickle_module)", True, None
            else:
                safe = self._loads_state_dict(node, scope)
                help = "pass weights_only=True" if safe else UNSAFE_HELP
                fix = keyword_fix("weights_only", "True")
            self.report(
                node,
                "torch.load() without weights_only: pass weights_only=True so that loading a "
                "checkpoint cannot run code (the default since torch 2.6, not before)",
                help=help,
                fix=fix,
                safe=safe,
            )

    def _loads_state_dict(self, node: cst.Call, scope: Scope) -> bool:
        """True when the file shows that this load reads only a state dict (see the module)."""
        if id(node) in self._fed_calls:
            return True
        name = self._assigned.get(id(node))
        # one use is the assignment itself; every other one feeds load_state_dict
        if (
            name is not None
            and self._fed_names[name]
            and (self._uses[name] == 1 + self._fed_names[name])
        ):
            return True
        path = _argument(node, 0, "f")
        saves = self._saves.get(self._path_key(path, scope)) if path is not None else None
        return bool(saves) and all(saves)

    def _path_key(self, path: cst.BaseExpression, scope: Scope | None = None) -> str:
        code = self.ctx.module.code_for_node(path)
        if isinstance(path, (cst.SimpleString, cst.ConcatenatedString)):
            return code
        return f"{self._scopes[-1] if scope is None else scope}:{code}"


def _argument(call: cst.Call, index: int, name: str) -> cst.BaseExpression | None:
    given = positional(call)
    if len(given) > index:
        return given[index].value
    arg = keyword(call, name)
    return arg.value if arg is not None else None


def _is_state_dict(expr: cst.BaseExpression) -> bool:
    """``x.state_dict()``, or a dict whose values are those or literals."""
    if isinstance(expr, cst.Call):
        return isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "state_dict"
    if isinstance(expr, cst.Dict):
        return all(
            isinstance(e, cst.DictElement)
            and (
                isinstance(e.value, _LITERALS)
                or (isinstance(e.value, cst.Name) and e.value.value in ("True", "False", "None"))
                or _is_state_dict(e.value)
            )
            for e in expr.elements
        )
    return False
