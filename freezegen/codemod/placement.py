"""Where the freeze goes when the model is wrapped before its optimizer is built, and whether a
statement of the script provably runs before it.

DDP, FSDP and fully_shard fix, when they are built, which parameters they reduce or shard (DDP
registers a hook on every parameter that requires grad and waits for all of them each step), and
Accelerate's ``prepare`` and Fabric's ``setup`` / ``setup_module`` build those wrappers when the
run is distributed. A freeze placed after such a wrap comes too late, so it goes above the first
wrap of the model the optimizer trains, in the same function, and freezes the unwrapped model:
its parameter names then lack the wrappers' prefixes (DDP's ``module.``, torch.compile's
``_orig_mod.``), which is what the user's patterns mean. It goes there only when that is provably
the same model with the same parameters; otherwise the transform refuses at the obstacle.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod.fabric_edits import setup_wraps
from freezegen.codemod.hand_step import HandStep
from freezegen.codemod.script import (
    MOVES,
    CannotAct,
    OptimizerSite,
    Script,
    parameters_owners,
    simple_statements,
    statement_targets,
    target_names,
)

Body = cst.Module | cst.IndentedBlock
_REDUCING = ("DistributedDataParallel", "DDP", "FullyShardedDataParallel", "FSDP", "fully_shard")
"""Wrappers that fix, when they are built, which parameters they reduce or shard."""
_FLAT = ("FullyShardedDataParallel", "FSDP")
"""FSDP1: without use_orig_params=True its flat parameters need one requires_grad each."""
_RENAMING = ("DataParallel",)
"""Wrappers over the same parameters that reduce nothing (they only prefix the names); with
``torch.compile``."""
_ADDS_PARAMETERS = (
    "resize_token_embeddings",
    "set_input_embeddings",
    "set_output_embeddings",
    "add_adapter",
    "add_module",
    "register_module",
    "register_parameter",
    "get_peft_model",
    "inject_adapter_in_model",
)
"""Calls that add parameters to a model or replace some with new ones (which require grad)."""
_MOVES = (*MOVES, "double")
"""Script's moves and ``double()``, which returns the module too: a wrap's argument may be
moved by any of them."""


@dataclass(frozen=True)
class Placement:
    """The statement the freeze goes above, and the model whose parameters it freezes."""

    anchor: cst.BaseStatement
    model: str
    renamed_by: cst.Call | None = None
    """A torch.compile (or DataParallel) above the freeze that ``model`` may be, on some path:
    the freeze went below it, so there the names it matches carry that wrapper's prefix."""


@dataclass(frozen=True, eq=False)
class _Wrap:
    call: cst.Call
    reducing: bool
    wrapped: cst.BaseExpression
    """The argument that is wrapped: the model, or a part of it."""
    binds: tuple[str, ...]
    """The names the wrap's result is assigned to (none when it wraps in place)."""


def freeze_placement(
    script: Script,
    site: OptimizerSite,
    model: str,
    by_hand: bool = False,
    after: tuple[cst.CSTNode, ...] = (),
) -> Placement:
    """Where to freeze the parameters of ``model``, which the optimizer of ``site`` trains:
    above the optimizer when no DDP/FSDP/fully_shard/prepare/setup wraps the model before it in
    its function, else above the top-level statement of that function holding the first wrap,
    freezing the model that wrap is handed. ``by_hand``: the script also updates parameters
    by hand (``p.data.add_(p.grad, ...)``), perhaps on a path that builds no optimizer, so the
    freeze goes above every ``if`` around the optimizer. Raises CannotAct when that is not
    provably right:
    the model wrapped is no name, FSDP1 without use_orig_params=True, the model is rebuilt
    between the wrap and the optimizer, or it is not bound where the freeze would go.

    ``after``: what must run before the freeze (a reference forward and backward pass that
    reads every parameter's gradient). When it sits between a torch.compile and the DDP wrap
    after it, the freeze goes just above that wrap, on the model as compiled (``renamed_by``);
    whether everything in ``after`` runs before the placement is for the caller to check."""
    function = script.function_of(site.anchor)
    body = function.body if function is not None else script.module
    if not isinstance(body, (cst.Module, cst.IndentedBlock)):
        return Placement(site.anchor, model)
    lifted = _above_other_branches(script, site, model, function, by_hand)
    if lifted is not site.anchor:
        _refuse_rebuilt(script, [model], lifted, site, _common_block(script, lifted, site.anchor))
    wraps = [w for w in _wraps(script, function) if _precedes(script, w.call, site.anchor)]
    name, chain, first, reducing = model, [model], None, False
    unwrapped = unwrapping(script, model, site.anchor)
    if unwrapped is not None:  # raw_model = model.module if ddp else model
        name = unwrapped
        chain.append(name)
    first_reducing: tuple[_Wrap, str, int] | None = None  # its model, the chain up to it
    for wrap in reversed(wraps):  # back from the optimizer: each wrap's model is an earlier name
        if name in wrap.binds:
            name = _unwrapped(script, wrap, name)
            chain.append(name)
        elif not _touches(script, wrap, name):
            continue
        first, reducing = wrap, reducing or wrap.reducing
        if wrap.reducing:
            _refuse_flat_parameters(script, wrap, name)
            first_reducing = (wrap, name, len(chain))
    if first is None or not reducing:  # a compile or DataParallel alone reduces nothing
        return Placement(lifted, model)
    # above the statement holding the wrap in the innermost block that also holds the
    # optimizer: the top of the function, or the body of `if __name__ == "__main__":`
    block = _common_block(script, first.call, site.anchor)
    anchor = _top(script, first.call, block)
    renamed_by = None
    if first_reducing is not None and first_reducing[0] is not first:
        wrap, handed, length = first_reducing
        lower = _top(script, wrap.call, block)
        if not all(runs_before_calls(script, n, anchor) for n in after) and all(
            runs_before_calls(script, n, lower) for n in after
        ):
            renamed_by, anchor, name, chain = first.call, lower, handed, chain[:length]
    _refuse_rebuilt(script, chain, anchor, site, block)
    if name != model and not _bound_before(script, name, anchor, block):
        raise CannotAct(
            first.call,
            f"`{name}` is wrapped here, before the optimizer, and the codemod cannot tell "
            f"that it is bound on every path above line {script.line(anchor)}, where the "
            "freeze would have to go to come before the wrap; bind it above that statement",
        )
    return Placement(anchor, name, renamed_by)


def unwrapping(script: Script, name: str, before: cst.BaseStatement) -> str | None:
    """The model that ``name`` unwraps, when the last assignment to ``name`` above ``before``
    in its block takes a DDP or DataParallel wrapper's ``.module`` (``raw_model = model.module
    if ddp else model``, llm.c's): the same parameters as ``model``, which is what the wraps
    above were handed. None otherwise."""
    value = script.assigned_value(name, before)
    if value is None:
        return None
    owners = {_unwrapped_owner(v) for v in _branches_of(value)}
    owner = owners.pop() if len(owners) == 1 else None
    return owner if owner != name else None


def _unwrapped_owner(value: cst.BaseExpression) -> str | None:
    """``model`` for ``model.module`` and for ``model`` itself; None for anything else."""
    if isinstance(value, cst.Attribute) and value.attr.value == "module":
        return dotted(value.value)
    return dotted(value)


def _branches_of(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, cst.IfExp):
        return [*_branches_of(value.body), *_branches_of(value.orelse)]
    return [value]


def hand_placement(script: Script, step: HandStep) -> Placement:
    """Where the freeze goes for a script that updates ``step.model`` by hand: above the
    statement that holds the update (the training loop) in the block where the model is built,
    after that build. Raises CannotAct when the model is not built by a plain assignment in
    this file that provably runs before that statement."""
    built = next(
        (
            s
            for s in simple_statements(script.module)
            if any(
                isinstance(small, cst.Assign)
                and any(dotted(t.target) == step.model for t in small.targets)
                for small in s.body
            )
        ),
        None,
    )
    if built is not None:
        anchor = _top(script, step.loop, _common_block(script, built, step.loop))
        if anchor is not built and runs_before(script, built, anchor):
            return Placement(anchor, step.model)
    raise CannotAct(
        step.loop,
        f"this loop updates the parameters of `{step.model}` by hand, and the codemod cannot "
        f"tell where `{step.model}` is built before the loop that runs it, to freeze it there",
    )


def _above_other_branches(
    script: Script,
    site: OptimizerSite,
    model: str,
    function: cst.FunctionDef | None,
    by_hand: bool,
) -> cst.BaseStatement:
    """The optimizer's anchor, or the outermost ``if`` around it (in its function) whose other
    branch also takes the model's parameters some other way (torchtune's
    ``if optimizer_in_bwd:`` building one optimizer per parameter, ``else:`` the configured
    one), or, ``by_hand``, the outermost ``if`` around it (the word language model's
    ``if args.use_optimizer:``, stepping by hand otherwise): the freeze must run on that path
    too."""
    anchor = site.anchor
    child: cst.CSTNode = site.anchor
    for ancestor in script.ancestors(site.anchor):
        if ancestor is function:
            break
        if isinstance(ancestor, cst.If):
            branches = [ancestor.body, ancestor.orelse]
            others = [b for b in branches if b is not None and b is not child]
            if any(model in parameters_owners(b) for b in others):
                anchor = ancestor
            elif by_hand and not any(
                model in statement_targets(s) for s in simple_statements(ancestor)
            ):
                anchor = ancestor  # not above the `if` that builds the model (`__main__`'s)
        child = ancestor
    return anchor


def runs_before(script: Script, node: cst.CSTNode, anchor: cst.BaseStatement) -> bool:
    """True when ``node`` provably runs before ``anchor`` and never again after it: in the same
    function, not in a loop (or lambda) that also holds the anchor, and in a statement that
    comes earlier in the innermost block holding both."""
    function = script.function_of(anchor)
    if script.function_of(node) is not function:
        return False
    for ancestor in script.ancestors(node):
        if ancestor is function:
            break
        if isinstance(ancestor, cst.Lambda):
            return False
        if isinstance(ancestor, (cst.For, cst.While)) and script.inside(anchor, ancestor):
            return False
    holders = {id(anchor), *(id(a) for a in script.ancestors(anchor))}
    child: cst.CSTNode = node
    for ancestor in script.ancestors(node):
        if id(ancestor) in holders and isinstance(ancestor, (cst.Module, cst.IndentedBlock)):
            mine = _index(ancestor, child)
            theirs = _index(ancestor, _top(script, anchor, ancestor))
            return mine is not None and theirs is not None and mine < theirs
        child = ancestor
    return False


def runs_before_calls(script: Script, node: cst.CSTNode, anchor: cst.BaseStatement) -> bool:
    """True when ``node`` provably runs before ``anchor`` and never again after it, following
    calls: :func:`runs_before`, or ``node`` is in a function of this module that is only ever
    called, by its name, at places that themselves run before ``anchor`` (llm.c's
    ``write_state(...)``, called once above the optimizer). A function that is referred to in
    any other way (handed on as a callback, aliased) may run at any time: False."""
    return _runs_before_calls(script, node, anchor, set())


def _runs_before_calls(
    script: Script, node: cst.CSTNode, anchor: cst.BaseStatement, seen: set[int]
) -> bool:
    if runs_before(script, node, anchor):
        return True
    function = script.function_of(node)
    if function is None or id(function) in seen or function is script.function_of(anchor):
        return False
    seen.add(id(function))
    name = function.name.value
    uses = [n for n in _name_uses(script.module, name) if n is not function.name]
    calls = [script.parents.get(id(n)) for n in uses]
    return bool(uses) and all(
        isinstance(call, cst.Call)
        and call.func is use
        and _runs_before_calls(script, call, anchor, seen)
        for use, call in zip(uses, calls, strict=True)
    )


def _name_uses(module: cst.Module, name: str) -> list[cst.Name]:
    """Every ``Name`` node spelling ``name`` in ``module`` (its definition's name too)."""
    found: list[cst.Name] = []

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                found.append(node)

    module.visit(_Find())
    return found


def _wraps(script: Script, function: cst.FunctionDef | None) -> list[_Wrap]:
    """The wraps of a module made in ``function`` itself, in source order."""
    return [
        wrap
        for call in script.calls
        if script.function_of(call) is function and (wrap := _as_wrap(script, call)) is not None
    ]


def _as_wrap(script: Script, call: cst.Call) -> _Wrap | None:
    """``call`` as a wrap of a module (DDP, FSDP, fully_shard, Accelerate's prepare, Fabric's
    setup, DataParallel, torch.compile), or None when it is none of them."""
    callee = script.names.qualified(call.func) or dotted(call.func) or ""
    last = callee.rpartition(".")[2]
    positional = [a.value for a in call.args if a.keyword is None and not a.star]
    module = next((a.value for a in call.args if a.keyword and a.keyword.value == "module"), None)
    wrapped = positional[0] if positional else module
    if wrapped is None:
        return None
    if last in ("setup", "setup_module"):  # Fabric's; another object's setup may not wrap
        inner = dotted(wrapped)
        if inner is None or not setup_wraps(script, call, inner):
            return None
        reducing = True
    elif last in (*_REDUCING, "prepare"):
        reducing = True
    elif last in _RENAMING or callee == "torch.compile":
        reducing = False
    else:
        return None
    return _Wrap(call, reducing, wrapped, _bound_by(script, call))


def _bound_by(script: Script, call: cst.Call) -> tuple[str, ...]:
    """The names ``target = call(...)`` (or ``call(...).cuda()``, or a tuple target) binds."""
    stmt = script.statement_of(call)
    if stmt is None or len(stmt.body) != 1:
        return ()
    small = stmt.body[0]
    if isinstance(small, cst.Assign):
        targets = [t.target for t in small.targets]
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        targets = [small.target]
    else:
        return ()
    if _strip_moves(small.value) is not call:  # type: ignore[arg-type]
        return ()
    names: list[str] = []
    for target in targets:
        elements = target.elements if isinstance(target, (cst.Tuple, cst.List)) else None
        names += [dotted(e.value) or "" for e in elements] if elements else [dotted(target) or ""]
    return tuple(names)


def _unwrapped(script: Script, wrap: _Wrap, name: str) -> str:
    """The name of the model ``wrap`` was handed for the result it binds to ``name``
    (Accelerate's ``prepare`` returns its arguments wrapped, in order; the others wrap their
    first); raises CannotAct when no one name holds it (``DDP(nn.Sequential(a, b))``)."""
    handed: cst.BaseExpression | None = wrap.wrapped
    callee = dotted(wrap.call.func) or ""
    if callee.rpartition(".")[2] == "prepare" and len(wrap.binds) > 1:
        positional = [a.value for a in wrap.call.args if a.keyword is None and not a.star]
        index = wrap.binds.index(name)
        handed = positional[index] if index < len(positional) else None
    inner = dotted(_strip_moves(handed)) if handed is not None else None
    if inner is None:
        what = f"`{script.code(handed)}`" if handed is not None else "what it is handed"
        raise CannotAct(
            wrap.call,
            f"`{name}` is wrapped here around {what}, which no one name holds, so no freeze "
            "above the wrap can reach that model's parameters: bind it to a name and wrap that",
        )
    return inner


def _touches(script: Script, wrap: _Wrap, name: str) -> bool:
    """True when ``wrap`` wraps ``name`` or a part of it in place: ``fully_shard(model)``,
    ``ddp = DDP(model)`` while the optimizer takes ``model.parameters()``, ``fully_shard(layer)``
    in ``for layer in model.layers``, ``model.features = DataParallel(model.features)``."""
    if _mentions(wrap.wrapped, name) or any(_within(b, name) for b in wrap.binds):
        return True
    handed = set(_names(wrap.wrapped))
    for ancestor in script.ancestors(wrap.call):
        if isinstance(ancestor, cst.FunctionDef):
            break
        if (
            isinstance(ancestor, cst.For)
            and _mentions(ancestor.iter, name)
            and handed & set(_names(ancestor.target))
        ):
            return True
    return False


def _refuse_flat_parameters(script: Script, wrap: _Wrap, name: str) -> None:
    """Raise CannotAct for FSDP1 without use_orig_params=True: it flattens each wrapped
    module's parameters into one FlatParameter, which fails to build when they mix
    requires_grad, so a freeze above it would stop the script there."""
    callee = script.names.qualified(wrap.call.func) or dotted(wrap.call.func) or ""
    if callee.rpartition(".")[2] not in _FLAT:
        return
    setting = next(
        (a.value for a in wrap.call.args if a.keyword and a.keyword.value == "use_orig_params"),
        None,
    )
    if setting is not None and script.code(setting) == "True":
        return
    said = f"use_orig_params={script.code(setting)}" if setting is not None else "its default"
    raise CannotAct(
        wrap.call,
        f"`{name}` is wrapped here in FSDP with {said}, which flattens each wrapped module's "
        "parameters into one that must all require grad or none: a freeze above this line "
        "that freezes part of one would fail here; pass use_orig_params=True",
    )


def _refuse_rebuilt(
    script: Script,
    chain: list[str],
    anchor: cst.BaseStatement,
    site: OptimizerSite,
    body: Body,
) -> None:
    """Raise CannotAct when, between ``anchor`` and the optimizer, a name of ``chain`` (the
    model and its wraps) or a part of one is bound to anything but a wrap or move of the same
    model: the freeze would act on parameters the optimizer may never see."""
    function = script.function_of(site.anchor)
    start, end = script.line(anchor), script.line(site.anchor)
    top = _top(script, site.anchor, body)
    looped = isinstance(top, (cst.For, cst.While))  # what follows the optimizer runs before it

    def between(node: cst.CSTNode) -> bool:
        line = script.line(node)
        return script.function_of(node) is function and (
            start <= line < end or (looped and script.inside(node, top))
        )

    def in_chain(bound: str) -> bool:
        return any(bound == n or _within(bound, n) for n in chain)

    def refuse(node: cst.CSTNode, bound: str) -> CannotAct:
        return CannotAct(
            node,
            f"`{bound}` is bound here, between line {start} (where a freeze must go to come "
            "before the model is wrapped) and the optimizer, so a freeze there may act on "
            "parameters the optimizer does not train; freeze in the script's own code, after "
            "this line and before the wrap",
        )

    for stmt in simple_statements(body):
        if not between(stmt):
            continue
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                targets = [small.target]
            else:
                continue
            for bound in (n for t in targets for n in _bound_names(t)):
                if in_chain(bound) and not _keeps_parameters(script, small.value, chain, bound):
                    raise refuse(small, bound)
    for loop in script.loops:
        if isinstance(loop, cst.For) and between(loop):
            bound = next((n for n in _bound_names(loop.target) if in_chain(n)), None)
            if bound is not None:
                raise refuse(loop, bound)
    for call in script.calls:
        name = dotted(call.func) or ""
        if (
            name.rpartition(".")[2] in _ADDS_PARAMETERS
            and between(call)
            and any(_mentions(call, n) for n in chain)
        ):
            raise CannotAct(
                call,
                f"{name}(...) may add or replace parameters of the model here, between line "
                f"{start} (where a freeze must go to come before the model is wrapped) and the "
                "optimizer, and a freeze above it would not see them; freeze in the script's "
                "own code, after this line and before the wrap",
            )


def _keeps_parameters(
    script: Script, value: cst.BaseExpression | None, chain: list[str], target: str
) -> bool:
    """True when ``value`` is a model of ``chain`` (or ``target`` itself) moved or wrapped:
    ``model.to(device)``, ``DDP(model)``, ``accelerator.prepare(model)``,
    ``torch.compile(model)``, ``DataParallel(model.features)`` for ``model.features``."""
    if value is None:
        return False
    if isinstance(value, cst.IfExp):  # DDP(model) if distributed else model
        return all(_keeps_parameters(script, v, chain, target) for v in (value.body, value.orelse))
    same = {*chain, target}
    value = _strip_moves(value)
    if dotted(value) in same:
        return True
    if isinstance(value, cst.Attribute) and value.attr.value == "module":
        return dotted(value.value) in same  # a wrapper's own module: the model it wraps
    if not isinstance(value, cst.Call) or _as_wrap(script, value) is None:
        return False
    return any(
        dotted(_strip_moves(a.value)) in same
        for a in value.args
        if a.keyword is None and not a.star
    )


def _bound_before(script: Script, name: str, anchor: cst.BaseStatement, body: Body) -> bool:
    """True when ``name`` is bound on every path reaching ``anchor``: the wrap there reads it
    (``anchor`` is the wrap's own statement, or a loop over a part of ``name``), a statement
    above binds it on every path, or it is a parameter of the function."""
    if isinstance(anchor, cst.SimpleStatementLine):
        return True
    if isinstance(anchor, cst.For) and _mentions(anchor.iter, name):
        return True
    function = script.function_of(anchor)
    if function is not None:
        params = (*function.params.params, *function.params.kwonly_params)
        if name in (p.name.value for p in params):
            return True
    index = _index(body, anchor)
    return index is not None and any(_binds_always(s, name) for s in body.body[:index])


def bound_on_every_path(script: Script, name: str, anchor: cst.BaseStatement) -> bool:
    """True when ``name`` is bound on every path reaching ``anchor``: a statement above it in
    its block binds it on every path, or it is a parameter of the function."""
    function = script.function_of(anchor)
    if function is not None:
        params = (*function.params.params, *function.params.kwonly_params)
        if name in (p.name.value for p in params):
            return True
    body = script.block_of(anchor)
    index = _index(body, anchor)
    return index is not None and any(_binds_always(s, name) for s in body.body[:index])


def _binds_always(stmt: cst.CSTNode, name: str) -> bool:
    """True when running ``stmt`` binds ``name`` on every path that leaves it normally (an
    assignment, a ``with`` block, an ``if`` whose every branch does)."""
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, cst.Assign):
                targets = [t.target for t in small.targets]
            elif isinstance(small, cst.AnnAssign) and small.value is not None:
                targets = [small.target]
            else:
                continue
            if any(name in target_names(t) for t in targets):
                return True
        return False
    if isinstance(stmt, cst.With):
        return _block_binds(stmt.body, name)
    if isinstance(stmt, cst.If):
        orelse = stmt.orelse
        if orelse is None:
            return False
        other = (
            _block_binds(orelse.body, name)
            if isinstance(orelse, cst.Else)
            else _binds_always(orelse, name)
        )
        return other and _block_binds(stmt.body, name)
    return False


def _block_binds(block: cst.BaseSuite, name: str) -> bool:
    return isinstance(block, cst.IndentedBlock) and any(_binds_always(s, name) for s in block.body)


def _precedes(script: Script, call: cst.Call, anchor: cst.CSTNode) -> bool:
    """True when ``call`` comes before ``anchor`` in their function's statement order."""
    body = _common_block(script, call, anchor)
    mine, theirs = _index(body, _top(script, call, body)), _index(body, _top(script, anchor, body))
    if mine is None or theirs is None:
        return False
    return mine < theirs or (mine == theirs and script.line(call) < script.line(anchor))


def _common_block(script: Script, node: cst.CSTNode, other: cst.CSTNode) -> Body:
    """The innermost block (module or indented block) holding both nodes."""
    holders = {id(a) for a in script.ancestors(other)}
    return next(
        a
        for a in script.ancestors(node)
        if id(a) in holders and isinstance(a, (cst.Module, cst.IndentedBlock))
    )


def _top(script: Script, node: cst.CSTNode, body: cst.CSTNode) -> cst.BaseStatement:
    """The statement of ``body`` holding ``node`` (``node`` itself when it is one)."""
    child = node
    for ancestor in script.ancestors(node):
        if ancestor is body:
            break
        child = ancestor
    return child  # type: ignore[return-value]


def _index(block: Body, stmt: cst.CSTNode) -> int | None:
    return next((i for i, s in enumerate(block.body) if s is stmt), None)


def _strip_moves(value: cst.BaseExpression) -> cst.BaseExpression:
    """``DDP(model).cuda()`` -> ``DDP(model)``; ``model.to(device)`` -> ``model``."""
    while (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value in _MOVES
    ):
        value = value.func.value
    return value


def _within(name: str, owner: str) -> bool:
    return name.startswith(owner + ".")


def _mentions(expr: cst.CSTNode, name: str) -> bool:
    """True when ``expr`` reads ``name`` or an attribute of it (``model.layers[0]``)."""
    return any(n == name or _within(n, name) for n in _names(expr))


def _names(expr: cst.CSTNode) -> list[str]:
    """The dotted names read in ``expr``, each taken whole (``model.layers``, not ``model``)."""
    found: list[str] = []

    class _Find(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            name = dotted(node)
            if name is None:
                return True
            found.append(name)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            found.append(node.value)

    expr.visit(_Find())
    return found


def _bound_names(target: cst.BaseExpression) -> list[str]:
    """The dotted names a target binds, a subscript counting as its owner (``model.layers[0]
    = ...`` binds a part of ``model.layers``)."""
    if isinstance(target, cst.Subscript):
        return _bound_names(target.value)
    return target_names(target)
