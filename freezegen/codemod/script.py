"""Where a training script keeps its step: the backward call, its loop, the optimizer, the model.

Every transform asks the same questions of the tree it is about to edit, so they are answered
here, freshly for each tree (transforms run one after another and each gets a new tree).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import SCALERS, Names, collect_names, dotted
from freezegen.codemod.fabric import is_fabric
from freezegen.codemod.lines import LineMap
from freezegen.codemod.versions import Pins

if TYPE_CHECKING:
    from freezegen.codemod.reference_pass import ReferencePasses

Block = cst.Module | cst.IndentedBlock
Loop = cst.For | cst.While
MOVES = ("to", "cuda", "cpu", "train", "eval", "half", "float", "bfloat16")
"""Module methods that return the module itself, its parameters kept (requires_grad too)."""
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


class YoursToSet(CannotAct):
    """The script already does what was asked with a mechanism of its own whose value the
    codemod cannot set in this file (the value comes from a config file or the command line,
    is computed, or is set twice): the transform keeps that mechanism, adds nothing, and
    ``message`` tells the user which value to set. Not a refusal: the other transforms act.

    ``refusal``: what to say instead where keeping is not enough after all (another branch
    builds the same object without the setting and would need an edit of the codemod's)."""

    def __init__(
        self, node: cst.CSTNode | None, message: str, refusal: CannotAct | None = None
    ) -> None:
        super().__init__(node, message)
        self.refusal = refusal or CannotAct(node, message)


def steps_optimizer(name: str) -> bool:
    """True when the dotted callee ``name`` is an optimizer's step (``optimizer.step``), not a
    learning-rate scheduler's."""
    return name.endswith(".step") and "sched" not in name


def raise_kept(kept: list[YoursToSet], edited: bool) -> None:
    """Raise the first of ``kept`` (the settings of the user's that every branch building an
    object reads), or its refusal when a branch needs an edit of the codemod's (``edited``) or
    the branches read different settings: one object set by the codemod and another by the
    user is not one mechanism. Returns when nothing is kept."""
    if not kept:
        return
    if edited or len({k.message for k in kept}) > 1:
        raise kept[0].refusal
    raise kept[0]


class SeveralModels(CannotAct):
    """The optimizer at ``site`` trains the parameters of several models (``owners``, in source
    order; on some path perhaps only some of them): the transforms that need the one model
    refuse with this message, and the freeze may freeze by pattern in each
    (:mod:`freezegen.codemod.freeze_each`)."""

    def __init__(
        self, site: OptimizerSite, owners: list[str], source: cst.BaseExpression, message: str
    ) -> None:
        super().__init__(site.call, message)
        self.site = site
        self.owners = owners
        self.source = source
        """What the optimizer is handed (``chain(...) if c else unet.parameters()``)."""


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
    twin: Backward | None = None
    """The other backward call of one AMP switch (``if use_amp: scaler.scale(loss).backward()
    ... else: loss.backward() ...``): one mechanism, each path running one of the two. This one
    is the plain call; ``twin`` the scaled one (see :meth:`Script.amp_switch`)."""


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
    each: str | None = None
    """For one optimizer per model of a list (``[AdamW(m.parameters()) for m in models]``): the
    list of models (``model`` is then the comprehension's name for one of them)."""
    handed: str | None = None
    """For an optimizer built out of view and handed in (``self.optimizer = optimizer``): the
    function it is handed to (``call`` is then its step, ``stmt`` the binding)."""


class Script:
    """One parsed module and the answers every transform needs."""

    def __init__(
        self,
        module: cst.Module,
        pins: Pins | None = None,
        lines: LineMap | None = None,
        focus: int = 0,
    ) -> None:
        self.module = module
        self.focus = focus
        """Which backward call, in source order, the step transforms act on (see
        :attr:`backward_count`)."""
        self.pins = pins or Pins()
        """The library versions the script's project pins (none for a source given as text)."""
        self.line_map = lines or LineMap()
        """Where the module's lines were in the file (see codemod/lines.py)."""
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
        start = self._positions[node].start  # type: ignore[index]
        return self.line_map.where(start.line, start.column)[0]

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

    def calls_in(self, node: cst.CSTNode) -> list[cst.Call]:
        """The script's calls inside ``node`` (not ``node`` itself), in source order."""
        return [call for call in self.calls if self.inside(call, node)]

    def exits_of(
        self, loop: cst.For | cst.While, kind: type[cst.Continue] | type[cst.Break]
    ) -> cst.Continue | cst.Break | None:
        """The first ``continue`` (or ``break``) of ``loop`` itself, not of a loop nested in
        it, if any."""
        found: list[cst.Continue | cst.Break] = []
        script = self

        class _Find(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                if not found and isinstance(node, kind) and script.loop_of(node) is loop:
                    found.append(node)
                return not found

        loop.body.visit(_Find())
        return found[0] if found else None

    def lines(self, nodes: list[cst.CSTNode]) -> str:
        """The lines ``nodes`` start on, as a message lists them: ``12, 40``."""
        return ", ".join(str(self.line(node)) for node in nodes)

    def module_functions(self, name: str) -> list[cst.FunctionDef]:
        """The module-level ``def name(...)`` statements, in source order."""
        return [
            s for s in self.module.body if isinstance(s, cst.FunctionDef) and s.name.value == name
        ]

    # --- the backward call ---------------------------------------------------------------

    @cached_property
    def backward(self) -> Backward:
        """The backward call the step transforms act on: the only one, or the one at
        :attr:`focus` when each backward call runs in a training loop of its own (nanoGPT's
        bench.py: one loop under the profiler, another without). Raises CannotAct when there
        is none, or several that share a loop or nest (a GAN's discriminator and generator
        steps: a window over one would change what the other sees)."""
        found = self._backwards
        if not found:
            raise CannotAct(None, "no loss.backward() call found")
        if self.amp_switch is not None:
            plain, scaled = sorted(found, key=lambda b: b.style != "tensor")
            return replace(plain, twin=scaled)
        if len(found) > 1 and not self._loops_of_their_own(found):
            if self._reference.refusal is not None:
                raise self._reference.refusal
            raise CannotAct(
                found[1].call,
                f"{len(found)} backward calls found (lines {self.lines([b.call for b in found])}); "
                "the codemod rewrites scripts with one, or with one per training loop, each "
                "loop of its own",
            )
        return found[self.focus]

    @property
    def backward_count(self) -> int:
        """How many backward calls the step transforms act on, one :attr:`focus` at a time:
        each one's when every backward call runs in a loop of its own, else 1 (and
        :attr:`backward` refuses when there are several)."""
        found = self._backwards
        return len(found) if len(found) > 1 and self._loops_of_their_own(found) else 1

    @property
    def reference_passes(self) -> tuple[Backward, ...]:
        """The backward calls that are one-off passes before training, not training steps
        (:mod:`freezegen.codemod.reference_pass`); the step transforms leave them alone."""
        return self._reference.passes

    @cached_property
    def _reference(self) -> ReferencePasses:
        from freezegen.codemod.reference_pass import reference_passes

        return reference_passes(self, self.backward_calls)

    @cached_property
    def backward_calls(self) -> list[Backward]:
        """Every backward call of the script, training or not, in source order."""
        return [b for c in self.calls if (b := self._backward(c)) is not None]

    @cached_property
    def amp_switch(self) -> cst.If | None:
        """The ``if`` that switches AMP between the script's two backward calls: ``if
        use_amp: scaler.scale(loss).backward() ... else: loss.backward() ...``, each call
        directly in its branch, of the same loss. One mechanism (each path runs one call), so
        :attr:`backward` is the plain call with the scaled one as its ``twin``. None when the
        script's backward calls are not that."""
        found = self._backwards
        if len(found) != 2 or {b.style for b in found} != {"scaler", "tensor"}:
            return None
        # `(loss / n).backward()` and `scaler.scale(loss / n)` take the same loss
        bare = {
            self.code(
                b.loss.with_changes(lpar=[], rpar=[]) if getattr(b.loss, "lpar", ()) else b.loss
            )
            for b in found
        }
        if len(bare) != 1:
            return None
        switch = self.parents.get(id(found[0].block))
        if not isinstance(switch, cst.If) or not isinstance(switch.orelse, cst.Else):
            return None
        blocks = {id(switch.body), id(switch.orelse.body)}
        if {id(b.block) for b in found} != blocks:
            return None
        return switch

    @cached_property
    def _backwards(self) -> list[Backward]:
        """The training backward calls: every one but the reference passes."""
        early = self.reference_passes
        return [b for b in self.backward_calls if all(b is not e for e in early)]

    def _loops_of_their_own(self, found: list[Backward]) -> bool:
        """True when each backward call's innermost loop holds no other backward call, and
        no such loop holds another's."""
        loops = [b.loop for b in found]
        if any(loop is None for loop in loops):
            return False
        return all(
            a is not b and not self.inside(a, b) and not self.inside(b, a)  # type: ignore[arg-type]
            for i, a in enumerate(loops)
            for b in loops[i + 1 :]
        )

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
        """Where the optimizer is built; raises CannotAct when nowhere or in several places.

        An optimizer is a call to a known optimizer class (``torch.optim.AdamW``,
        ``bnb.optim.AdamW8bit``, ``schedulefree.AdamWScheduleFree``), to a name bound only to
        such classes (``optimizer_cls = torch.optim.AdamW if ... else DummyOptim``), or to
        anything else assigned to an optimizer-like name, stepped, and handed exactly one
        collection of one model's parameters (``getattr(torch.optim, name)(model.parameters())``,
        ``config.instantiate(cfg_optimizer, self._model.parameters())``).
        """
        sites: list[OptimizerSite] = []
        unknown: list[tuple[str, cst.Call]] = []
        for target, call in self.names.constructed:
            stmt = self.statement_of(call)
            if stmt is None or len(stmt.body) != 1:
                continue
            callee = self.names.qualified(call.func) or dotted(call.func) or ""
            last = callee.rsplit(".", 1)[-1]
            if last == "configure_optimizers":
                assert isinstance(call.func, cst.Attribute)
                model = dotted(call.func.value)
                sites.append(OptimizerSite(stmt, call, target, model, None, stmt))
            elif last in OPTIMIZERS or self._bound_to_optimizer_classes(call.func):
                sites.append(self._optimizer(stmt, call, target))
            elif (helper := self._optimizer_helper(stmt, call, target)) is not None:
                sites.append(helper)
            elif _wraps(call, target):
                continue  # optimizer = fabric.setup_optimizers(optimizer): the same one, wrapped
            elif says_optimizer(target) and last not in _PARAMETER_COLLECTIONS:
                site = self._built_from_parameters(stmt, call, target)
                if site is not None:
                    sites.append(site)
                else:
                    unknown.append((target, call))
        if not sites:
            from freezegen.codemod.optimizer_origin import optimizer_elsewhere

            elsewhere = optimizer_elsewhere(self)
            if elsewhere is not None:
                return elsewhere
            raise self._no_optimizer([call for _, call in unknown])
        if len({s.target for s in sites}) > 1:
            raise CannotAct(sites[1].call, "more than one optimizer is built")
        # the same name in another function is another variable (a model's own
        # configure_optimizers builds its optimizer under the name the script uses for it)
        scope = self.function_of(sites[-1].stmt)
        sites = [s for s in sites if self.function_of(s.stmt) is scope]
        other = next(
            (c for t, c in unknown if t == sites[-1].target and self.function_of(c) is scope),
            None,
        )
        if other is not None:  # on another path, the optimizer comes from elsewhere
            raise self._no_optimizer([other])
        return self._one_site(sites)

    def _one_site(self, sites: list[OptimizerSite]) -> OptimizerSite:
        """The last construction, anchored where setup runs before every construction of the
        optimizer: above the first when they follow each other in one block (``optimizer =
        Adam(model.parameters())`` then ``optimizer = Distributed(model.parameters(), opt=
        optimizer)``: the freeze must come before both), else above the one ``if``/``try``
        holding them all (``if fused: optimizer = A(...) else: optimizer = B(...)``)."""
        last = sites[-1]
        block = self.parents.get(id(last.anchor))
        if all(self.parents.get(id(s.anchor)) is block for s in sites):
            assert isinstance(block, (cst.Module, cst.IndentedBlock))
            order = {id(stmt): i for i, stmt in enumerate(block.body)}
            first = min(sites, key=lambda s: order[id(s.anchor)])
            return replace(last, anchor=first.anchor)
        holder = next(
            (
                a
                for a in self.ancestors(last.anchor)
                if isinstance(a, (cst.If, cst.Try))
                and isinstance(self.parents.get(id(a)), (cst.Module, cst.IndentedBlock))
                and all(self.inside(s.anchor, a) for s in sites)
            ),
            None,
        )
        if holder is None or len({s.model for s in sites}) > 1:
            raise CannotAct(
                last.call,
                f"the optimizer is built on several paths (lines "
                f"{', '.join(str(self.line(s.call)) for s in sites)}) that the codemod cannot "
                "place one setup above",
            )
        for stmt in simple_statements(holder):
            for small in stmt.body:
                bound = [n for t in getattr(small, "targets", ()) for n in target_names(t.target)]
                model = last.model or ""
                if any(model == n or model.startswith(n + ".") for n in bound):
                    # setup above the `if` would act on the model before it is (re)built
                    raise CannotAct(
                        small,
                        f"`{last.model}` is built here, inside the `if` that builds the "
                        "optimizer on several paths, so no one place above it sees the model",
                    )
        return OptimizerSite(last.stmt, last.call, last.target, last.model, last.params, holder)

    @property
    def trained_model(self) -> str | None:
        """The dotted name of the model the optimizer trains; None when it cannot be told (or
        it is one of a list, whose name is not one in scope where it is trained)."""
        try:
            site = self.optimizer
            return site.model if site.each is None else None
        except CannotAct:
            return None

    def _optimizer(
        self,
        stmt: cst.SimpleStatementLine,
        call: cst.Call,
        target: str,
        params: cst.Arg | None = None,
    ) -> OptimizerSite:
        """The site of an optimizer built over ``params`` (by default its ``params=`` or first
        positional argument); raises CannotAct when they are the parameters of two models."""
        if params is None:
            args = call.args
            params = next((a for a in args if a.keyword and a.keyword.value == "params"), None)
            params = params or next((a for a in args if a.keyword is None and not a.star), None)
        model, anchor = None, stmt
        if params is not None:
            source = self._params_source(params, stmt)
            if source is not params.value:
                anchor = self.statement_of(source) or stmt
            owners = parameters_owners(source)
            if len(owners) > 1:
                raise SeveralModels(
                    OptimizerSite(stmt, call, target, None, params, anchor),
                    owners,
                    source,
                    f"this optimizer trains the parameters of {' and '.join(owners)}: the "
                    "codemod rewrites scripts that train one model",
                )
            model = owners[0] if owners else None
        return OptimizerSite(stmt, call, target, model, params, anchor)

    def _built_from_parameters(
        self, stmt: cst.SimpleStatementLine, call: cst.Call, target: str
    ) -> OptimizerSite | None:
        """The site of ``optimizer = factory(..., model.parameters(), ...)`` whose callee is no
        known optimizer class: ``getattr(torch.optim, name)(...)``, or a class that a
        configuration names (``config.instantiate(cfg_optimizer, params=model.parameters())``,
        ``instantiate_torch_optimizer(optimizer, model.parameters())``). Whatever class it
        builds, parameters frozen before it is built get no gradient and no update, so what
        matters is the model: exactly one argument, in any place, must be a collection of one
        model's parameters, and what is built must be stepped as the optimizer. None otherwise
        (no argument or several name parameters); raises CannotAct when the one that does
        names two models' parameters."""
        named = [arg for arg in call.args if not arg.star and self._names_parameters(arg, stmt)]
        if len(named) != 1 or not self._stepped(target, stmt):
            return None
        return self._optimizer(stmt, call, target, named[0])

    def _stepped(self, target: str, stmt: cst.SimpleStatementLine) -> bool:
        """True when ``target`` has its ``step()`` called, or is returned by its function to a
        caller that assigns it to a name whose ``step()`` is called (torchtune's
        ``self._optimizer = self._setup_optimizer(...)``)."""
        stepped = {
            dotted(c.func.value)
            for c in self.calls
            if isinstance(c.func, cst.Attribute) and c.func.attr.value == "step"
        }
        if target in stepped:
            return True
        function = self.function_of(stmt)
        if function is None or not any(
            isinstance(small, cst.Return)
            and small.value is not None
            and dotted(small.value) == target
            and self.function_of(small) is function
            for line in simple_statements(function)
            for small in line.body
        ):
            return False
        return any(
            (dotted(call.func) or "").rpartition(".")[2] == function.name.value
            for name, call in self.names.constructed
            if name in stepped
        )

    def _optimizer_helper(
        self, stmt: cst.SimpleStatementLine, call: cst.Call, target: str
    ) -> OptimizerSite | None:
        """``optimizer = create_optimizer(cfg, model)`` where ``create_optimizer`` is a function
        of this file returning an optimizer class over its ``model`` parameter's parameters:
        the site is the call, the model the argument passed for that parameter."""
        if not isinstance(call.func, cst.Name):
            return None
        function = next(iter(self.module_functions(call.func.value)), None)
        if function is None:
            return None
        returns = [
            r
            for r in simple_statements(function)
            for r in r.body
            if isinstance(r, cst.Return) and self.function_of(r) is function
        ]
        if len(returns) != 1 or not isinstance(returns[0].value, cst.Call):
            return None
        built = returns[0].value
        callee = self.names.qualified(built.func) or dotted(built.func) or ""
        if callee.rpartition(".")[2] not in OPTIMIZERS:
            return None
        inner = self._optimizer(self.statement_of(built) or stmt, built, target)
        head, dot, rest = (inner.model or "").partition(".")
        names = [p.name.value for p in function.params.params]
        if head not in names:
            return None
        index = names.index(head)
        argument = next(
            (a for a in call.args if a.keyword is not None and a.keyword.value == head), None
        )
        positional = [a for a in call.args if a.keyword is None and not a.star]
        if argument is None and index < len(positional) and not any(a.star for a in call.args):
            argument = positional[index]
        owner = dotted(argument.value) if argument is not None else None
        if owner is None:
            return None
        return OptimizerSite(stmt, call, target, owner + dot + rest, None, stmt)

    def _params_source(self, params: cst.Arg, stmt: cst.SimpleStatementLine) -> cst.BaseExpression:
        """What the optimizer's parameter argument holds: its value, or the value last assigned
        to it above the optimizer (``optimizer_grouped_parameters = [...]``)."""
        if isinstance(params.value, cst.Name):
            assigned = self.assigned_value(params.value.value, stmt)
            if assigned is not None:
                return assigned
        return params.value

    def _names_parameters(self, arg: cst.Arg, stmt: cst.SimpleStatementLine) -> bool:
        """True when ``arg`` is a collection built from a model's parameters
        (``model.parameters()``, ``filter(fn, model.parameters())``, groups of
        ``model.named_parameters()``, or a name assigned one above), not something a call
        makes of them (``opt=optimizer``, an optimizer already built over them)."""
        source = self._params_source(arg, stmt)
        if not parameters_owners(source):
            return False
        if isinstance(source, cst.Call):
            name = dotted(source.func) or ""
            return name.rpartition(".")[2] in _PARAMETER_COLLECTIONS
        return isinstance(source, _COLLECTIONS)

    def _bound_to_optimizer_classes(self, func: cst.BaseExpression) -> bool:
        """True when ``func`` is a name whose every assignment in the file is an optimizer
        class, on every branch (``cls = torch.optim.AdamW if fused else bnb.optim.AdamW8bit``)."""
        if not isinstance(func, cst.Name):
            return False
        values = [
            small.value
            for stmt in simple_statements(self.module)
            for small in stmt.body
            if isinstance(small, cst.Assign)
            and any(dotted(t.target) == func.value for t in small.targets)
        ]
        return bool(values) and all(
            (self.names.qualified(branch) or dotted(branch) or "").rpartition(".")[2] in OPTIMIZERS
            for value in values
            for branch in _branches(value)
        )

    def _no_optimizer(self, unknown: list[cst.Call]) -> CannotAct:
        """Why no optimizer construction was found, located where the optimizer comes from."""
        if unknown:
            stepped = {
                dotted(c.func.value)
                for c in self.calls
                if isinstance(c.func, cst.Attribute) and c.func.attr.value in _BOUNDARY
            }
            # the real obstacle first: a class a configuration names, then what is stepped
            call = min(
                unknown,
                key=lambda c: (
                    "instantiate" not in (dotted(c.func) or ""),
                    self._target_of(c) not in stepped,
                ),
            )
            return CannotAct(
                call,
                f"the optimizer is built by {self.code(call.func)}(...) at line "
                f"{self.line(call)}: its class is not known before run time, and it is not "
                "handed exactly one collection of one model's parameters and then stepped, so "
                "the codemod cannot tell which model it trains (hand it model.parameters() or "
                "parameter groups of model.named_parameters())",
            )
        for call in self.calls:
            func = call.func
            if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
                continue
            receiver = dotted(func.value)
            if receiver is None or not says_optimizer(receiver):
                continue
            origin = self._assignment_of(receiver)
            if origin is not None:
                return CannotAct(
                    origin,
                    f"`{receiver}` comes from `{self.code(origin.value)}` at line "
                    f"{self.line(origin)}, not from an optimizer constructor in this file, so "
                    "the model it trains is unknown",
                )
            function = self.function_of(call)
            if function is not None and receiver in self.bound_in(function):
                origin_text = f"a parameter of {function.name.value}(), built by its caller"
            else:
                origin_text = "not built in this file"
            return CannotAct(
                call,
                f"`{receiver}` is stepped here but is {origin_text}, so the model it trains "
                "is unknown",
            )
        return CannotAct(
            None,
            "no optimizer construction found (optimizer = torch.optim.AdamW("
            "model.parameters(), ...)), so the model is unknown",
        )

    def _target_of(self, call: cst.Call) -> str | None:
        return next((t for t, c in self.names.constructed if c is call), None)

    def _assignment_of(self, name: str) -> cst.Assign | None:
        """The first assignment in the file binding ``name`` (tuple targets included)."""
        for stmt in simple_statements(self.module):
            for small in stmt.body:
                if isinstance(small, cst.Assign) and any(
                    name in target_names(t.target) for t in small.targets
                ):
                    return small
        return None

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
                and call.func.attr.value in MOVES
                and isinstance(call.func.value, cst.Call)
            ):
                call = call.func.value
            name = self.names.qualified(call.func) or dotted(call.func)
            if name and name.rpartition(".")[2] not in MOVES:
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

    def scheduler_steps(self) -> list[cst.Call]:
        """Every ``<scheduler>.step()`` call (a receiver whose name says ``sched``)."""
        return [
            call
            for call in self.calls
            if isinstance(call.func, cst.Attribute)
            and call.func.attr.value == "step"
            and "sched" in (dotted(call.func.value) or "").lower()
        ]

    @cached_property
    def profilers(self) -> set[str]:
        """Names bound to a torch profiler: ``with torch.profiler.profile(...) as prof`` or
        ``prof = torch.profiler.profile(...)``; its ``prof.step()`` marks a pass of the loop."""
        found = set(self.names.targets_of("profile"))
        names = self.names

        class _Withs(cst.CSTVisitor):
            def visit_WithItem(self, node: cst.WithItem) -> None:
                item = node.item
                if (
                    isinstance(item, cst.Call)
                    and names.callee(dotted(item.func)).rpartition(".")[2] == "profile"
                    and node.asname is not None
                    and isinstance(node.asname.name, cst.Name)
                ):
                    found.add(node.asname.name.value)

        self.module.visit(_Withs())
        return found

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
            # a profiler's step() counts the loop's passes for its schedule, not updates
            if method == "step" and receiver in self.profilers:
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


def _wraps(call: cst.Call, target: str) -> bool:
    """True when ``call`` is handed ``target`` itself (``fabric.setup_optimizers(optimizer)``,
    ``accelerator.prepare(optimizer)``): what it returns wraps that object, built elsewhere."""
    handed = any(dotted(arg.value) == target for arg in call.args)
    # instantiate_optimizer(optimizer, model.parameters()) builds one from a setting of that name
    return handed and not parameters_owners(call)


def expression_call(stmt: cst.CSTNode) -> cst.Call | None:
    """The call a statement line consists of (``optimizer.step()``), or None."""
    if (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, cst.Call)
    ):
        return stmt.body[0].value
    return None


def zeroes_only(stmt: cst.CSTNode) -> bool:
    """True when every statement in ``stmt`` is a zero_grad call (``if args.use_optimizer:
    optimizer.zero_grad() else: model.zero_grad()`` included): moving or guarding it moves or
    skips nothing else."""
    lines = simple_statements(stmt)
    return bool(lines) and all(
        (call := expression_call(line)) is not None
        and (dotted(call.func) or "").endswith(".zero_grad")
        for line in lines
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


_PARAMETER_COLLECTIONS = ("parameters", "named_parameters", "filter", "list", "tuple", "chain")
"""Calls that hand an optimizer a model's parameters as they are (or filtered, or chained)."""
_COLLECTIONS = (cst.List, cst.Tuple, cst.ListComp, cst.GeneratorExp, cst.Dict)
"""Literal parameter groups: ``[{"params": [...], "weight_decay": ...}, ...]``."""


def says_optimizer(name: str) -> bool:
    """True when a dotted name reads as an optimizer (``optimizer``, ``self.opt``, ``optim``)."""
    last = name.rsplit(".", 1)[-1].lower()
    return "optim" in last or last in ("opt", "optimiser") or last.startswith("opt_")


def _branches(expr: cst.BaseExpression) -> list[cst.BaseExpression]:
    """The values ``expr`` may take: both sides of every conditional expression."""
    if isinstance(expr, cst.IfExp):
        return [*_branches(expr.body), *_branches(expr.orelse)]
    return [expr]


def target_names(target: cst.BaseExpression) -> list[str]:
    """The dotted names an assignment target binds (``a, self.b = ...`` binds both)."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for e in target.elements for n in target_names(e.value)]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    name = dotted(target)
    return [name] if name else []


def statement_targets(stmt: cst.CSTNode) -> set[str]:
    """The dotted names a simple statement line assigns (``self.loss`` too: minGPT's
    ``logits, self.loss = model(x, y)``); none for any other statement."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return set()
    names: set[str] = set()
    for small in stmt.body:
        if isinstance(small, cst.Assign):
            names.update(n for t in small.targets for n in target_names(t.target))
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            names.update(target_names(small.target))
    return names


def used_names(node: cst.CSTNode) -> set[str]:
    """Every name ``node`` mentions."""
    names: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            names.add(n.value)

    node.visit(_Names())
    return names


def parameters_owners(expr: cst.CSTNode) -> list[str]:
    """The distinct owners of ``x.parameters()`` / ``x.named_parameters()`` calls in ``expr``,
    in source order (``model`` for the no_trainer parameter groups)."""
    finder = _ParametersCall()
    expr.visit(finder)
    return finder.owners


class _ParametersCall(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.owners: list[str] = []

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in (
            "parameters",
            "named_parameters",
        ):
            owner = dotted(func.value)
            if owner is not None and owner not in self.owners:
                self.owners.append(owner)


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
