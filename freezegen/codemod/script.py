"""Where a training script keeps its step: the backward call, its loop, the optimizer, the model.

Every transform asks the same questions of the tree it is about to edit, so they are answered
here, freshly for each tree (transforms run one after another and each gets a new tree).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import SCALERS, Names, collect_names, dotted
from freezegen.codemod.fabric import is_fabric
from freezegen.codemod.versions import Pins

Block = cst.Module | cst.IndentedBlock
Loop = cst.For | cst.While
_MOVES = ("to", "cuda", "cpu", "train", "eval", "half", "float", "bfloat16")
_BOUNDARY = (
    "step",
    "update",
    "zero_grad",
    "unscale_",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_gradients",  # Fabric's, which unscales and clips
)


class CannotAct(Exception):
    """A transform cannot be applied: the node it is about and why."""

    def __init__(self, node: cst.CSTNode | None, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


@dataclass(frozen=True, eq=False)
class Backward:
    """The one backward call of the script and its surroundings."""

    call: cst.Call
    stmt: cst.SimpleStatementLine
    loss: cst.BaseExpression
    style: str
    """``tensor`` (loss.backward()), ``scaler`` (scaler.scale(loss).backward()) or
    ``accelerate`` (accelerator.backward(loss)) or ``fabric`` (fabric.backward(loss), the
    object built by Lightning's Fabric(...): :mod:`freezegen.codemod.fabric`)."""
    block: Block
    loop: Loop | None
    function: cst.FunctionDef | None


@dataclass(frozen=True, eq=False)
class OptimizerSite:
    """``optimizer = torch.optim.AdamW(model.parameters(), ...)`` and what it tells."""

    stmt: cst.SimpleStatementLine
    call: cst.Call
    target: str
    model: str | None
    """The dotted name whose parameters the optimizer takes (``model``, ``self.model``)."""
    params: cst.Arg | None
    anchor: cst.BaseStatement
    """Setup goes above this statement: the optimizer's, or the one building its param groups."""


class Script:
    """One parsed module and the answers every transform needs."""

    def __init__(self, module: cst.Module, pins: Pins | None = None) -> None:
        self.module = module
        self.pins = pins or Pins()
        """The library versions the script's project pins (none for a source given as text)."""
        self.parents: dict[int, cst.CSTNode] = {}
        self.calls: list[cst.Call] = []
        self.loops: list[Loop] = []
        module.visit(_Index(self))
        self.names: Names = collect_names(module)

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    @cached_property
    def _positions(self) -> object:
        return MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)

    def line(self, node: cst.CSTNode) -> int:
        """The line ``node`` starts on (positions are computed once, when first asked)."""
        return self._positions[node].start.line  # type: ignore[index]

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        while id(node) in self.parents:
            node = self.parents[id(node)]
            yield node

    def statement_of(self, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
        return next(
            (a for a in self.ancestors(node) if isinstance(a, cst.SimpleStatementLine)), None
        )

    def function_of(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        return next((a for a in self.ancestors(node) if isinstance(a, cst.FunctionDef)), None)

    def block_of(self, stmt: cst.CSTNode) -> Block:
        parent = self.parents[id(stmt)]
        assert isinstance(parent, (cst.Module, cst.IndentedBlock)), type(parent)
        return parent

    def loop_of(self, node: cst.CSTNode) -> Loop | None:
        for a in self.ancestors(node):
            if isinstance(a, (cst.For, cst.While)):
                return a
            if isinstance(a, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return None
        return None

    def inside(self, node: cst.CSTNode, container: cst.CSTNode) -> bool:
        return any(a is container for a in self.ancestors(node))

    # --- the backward call ---------------------------------------------------------------

    @cached_property
    def backward(self) -> Backward:
        """The backward call; raises CannotAct when there is none or more than one."""
        found = [b for c in self.calls if (b := self._backward(c)) is not None]
        if not found:
            raise CannotAct(None, "no loss.backward() call found")
        if len(found) > 1:
            lines = ", ".join(str(self.line(b.call)) for b in found)
            raise CannotAct(
                found[1].call,
                f"{len(found)} backward calls found (lines {lines}); the codemod rewrites "
                "scripts with one",
            )
        return found[0]

    def _backward(self, call: cst.Call) -> Backward | None:
        func = call.func
        if not isinstance(func, cst.Attribute) or func.attr.value != "backward":
            return None
        positional = [a.value for a in call.args if a.keyword is None and not a.star]
        if positional and isinstance(func.value, (cst.Name, cst.Attribute)):
            fabric = is_fabric(self, func.value, self.function_of(call))
            style, loss = "fabric" if fabric else "accelerate", positional[0]
        elif positional:
            return None
        elif (
            isinstance(func.value, cst.Call)
            and isinstance(func.value.func, cst.Attribute)
            and func.value.func.attr.value == "scale"
            and func.value.args
        ):
            style, loss = "scaler", func.value.args[0].value
        else:
            style, loss = "tensor", func.value
        stmt = self.statement_of(call)
        if stmt is None:
            return None
        if len(stmt.body) != 1 or not (
            isinstance(stmt.body[0], cst.Expr) and stmt.body[0].value is call
        ):
            raise CannotAct(call, "the backward call is not a statement of its own")
        return Backward(
            call, stmt, loss, style, self.block_of(stmt), self.loop_of(stmt), self.function_of(stmt)
        )

    # --- the optimizer and the model -----------------------------------------------------

    @cached_property
    def optimizer(self) -> OptimizerSite:
        """Where the optimizer is built; raises CannotAct when nowhere or in several places."""
        sites = []
        for target, call in self.names.constructed:
            callee = self.names.qualified(call.func) or dotted(call.func) or ""
            last = callee.rsplit(".", 1)[-1]
            if last in OPTIMIZERS or last == "configure_optimizers":
                stmt = self.statement_of(call)
                if stmt is not None and len(stmt.body) == 1:
                    sites.append(self._optimizer(stmt, call, target, last))
        if not sites:
            raise CannotAct(
                None,
                "no optimizer construction found (optimizer = torch.optim.AdamW("
                "model.parameters(), ...)), so the model is unknown",
            )
        if len({s.target for s in sites}) > 1:
            raise CannotAct(sites[1].call, "more than one optimizer is built")
        return sites[-1]

    @property
    def trained_model(self) -> str | None:
        """The dotted name of the model the optimizer trains; None when it cannot be told."""
        try:
            return self.optimizer.model
        except CannotAct:
            return None

    def _optimizer(
        self, stmt: cst.SimpleStatementLine, call: cst.Call, target: str, callee: str
    ) -> OptimizerSite:
        if callee == "configure_optimizers":
            assert isinstance(call.func, cst.Attribute)
            return OptimizerSite(stmt, call, target, dotted(call.func.value), None, stmt)
        params = next((a for a in call.args if a.keyword and a.keyword.value == "params"), None)
        params = params or next((a for a in call.args if a.keyword is None and not a.star), None)
        model, anchor = None, stmt
        if params is not None:
            source = params.value
            if isinstance(source, cst.Name):
                assigned = self.assigned_value(source.value, stmt)
                if assigned is not None:
                    source = assigned
                    anchor = self.statement_of(assigned) or stmt
            model = _parameters_owner(source)
        return OptimizerSite(stmt, call, target, model, params, anchor)

    def assigned_value(self, name: str, before: cst.CSTNode) -> cst.BaseExpression | None:
        """The value of the last ``name = ...`` in the block of ``before``, above it."""
        block = self.block_of(before)
        value = None
        for stmt in block.body:
            if stmt is before:
                break
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign) and any(
                        dotted(t.target) == name for t in small.targets
                    ):
                        value = small.value
        return value

    def model_constructor(self, model: str) -> str | None:
        """The qualified or dotted callee last assigned to ``model`` (``.to(...)`` unwrapped)."""
        callee = None
        for target, call in self.names.constructed:
            if target != model:
                continue
            while (
                isinstance(call.func, cst.Attribute)
                and call.func.attr.value in _MOVES
                and isinstance(call.func.value, cst.Call)
            ):
                call = call.func.value
            name = self.names.qualified(call.func) or dotted(call.func)
            if name and name.rpartition(".")[2] not in _MOVES:
                callee = name
        return callee

    def is_hf_model(self, model: str) -> bool:
        callee = self.model_constructor(model)
        if callee is None:
            return any(q.split(".", 1)[0] == "transformers" for q in self.names.imports.values())
        return callee.startswith("transformers.") or callee.endswith(
            (".from_pretrained", ".from_config")
        )

    # --- names in scope ------------------------------------------------------------------

    def bound_in(self, scope: cst.Module | cst.FunctionDef | None) -> set[str]:
        """Names assigned, imported or taken as parameters in ``scope`` (module when None)."""
        scope = scope or self.module
        finder = _Bound(scope)
        scope.visit(finder)
        return finder.names

    def visible(self, name: str, function: cst.FunctionDef | None) -> bool:
        if name in self.bound_in(None):
            return True
        return function is not None and name in self.bound_in(function)

    def fresh(self, candidates: tuple[str, ...], function: cst.FunctionDef | None) -> str:
        """The first candidate not bound in ``function`` or the module."""
        taken = self.bound_in(None) | (self.bound_in(function) if function else set())
        return next(c for c in (*candidates, "fg_" + candidates[0]) if c not in taken)

    def boundary_statements(self, container: cst.CSTNode) -> list[cst.SimpleStatementLine]:
        """Statements inside ``container`` that step, update, clip or zero gradients."""
        out = []
        scalers = self.names.targets_of(*SCALERS)
        for call in self.calls:
            name = dotted(call.func) or ""
            receiver, _, method = name.rpartition(".")
            # a meter's or a progress bar's update() is bookkeeping; only a scaler's is a step
            if method == "update" and receiver not in scalers and "scaler" not in receiver:
                continue
            if method in _BOUNDARY and self.inside(call, container):
                stmt = self.statement_of(call)
                if stmt is not None and all(stmt is not o for o in out):
                    out.append(stmt)
        return out


def foreign_backward(script: Script, back: Backward) -> CannotAct:
    """The refusal for ``x.backward(loss)`` where the file builds ``x`` with neither
    Accelerate's Accelerator(...) nor Lightning's Fabric(...): what its backward does (scale,
    sync, accumulate) is unknown, so nothing can be composed with it."""
    func = back.call.func
    receiver = script.code(func.value) if isinstance(func, cst.Attribute) else "an object"
    return CannotAct(
        back.call,
        f"the script backpropagates through `{receiver}`, which this file builds with neither "
        "Accelerate's Accelerator(...) nor Lightning's Fabric(...), so what its backward does "
        "is unknown",
    )


def simple_statements(node: cst.CSTNode) -> list[cst.SimpleStatementLine]:
    """Every simple statement line inside ``node``, in source order."""
    out: list[cst.SimpleStatementLine] = []

    class _Collect(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, n: cst.SimpleStatementLine) -> bool:
            out.append(n)
            return False

    node.visit(_Collect())
    return out


def _parameters_owner(expr: cst.CSTNode) -> str | None:
    """``model`` for the first ``model.parameters()`` / ``model.named_parameters()`` in expr."""
    finder = _ParametersCall()
    expr.visit(finder)
    return finder.owner


class _ParametersCall(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.owner: str | None = None

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if (
            self.owner is None
            and isinstance(func, cst.Attribute)
            and func.attr.value in ("parameters", "named_parameters")
        ):
            self.owner = dotted(func.value)


class _Index(cst.CSTVisitor):
    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.stack: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            self.script.parents[id(node)] = self.stack[-1]
        self.stack.append(node)
        if isinstance(node, cst.Call):
            self.script.calls.append(node)
        elif isinstance(node, (cst.For, cst.While)):
            self.script.loops.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


class _Bound(cst.CSTVisitor):
    """Names bound directly in one scope (nested functions and classes are other scopes)."""

    def __init__(self, scope: cst.CSTNode) -> None:
        super().__init__()
        self.scope = scope
        self.names: set[str] = set()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node is self.scope:
            for param in (*node.params.params, *node.params.kwonly_params):
                self.names.add(param.name.value)
            return True
        self.names.add(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.names.add(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        self._targets(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets(node.target)

    def visit_For(self, node: cst.For) -> None:
        self._targets(node.target)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._targets(node.target)

    def visit_AsName(self, node: cst.AsName) -> None:
        self._targets(node.name)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if node.asname is None:
            self.names.add((dotted(node.name) or "").split(".", 1)[0])

    def _targets(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Name):
            self.names.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._targets(element.value)
        elif isinstance(target, cst.StarredElement):
            self._targets(target.value)
