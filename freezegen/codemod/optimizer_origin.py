"""Which model an optimizer trains when the name that is stepped is assigned no constructor.

:attr:`Script.optimizer` finds ``optimizer = torch.optim.AdamW(model.parameters(), ...)``. Two
shapes reach the step by another road and still say which model is trained:

- **One optimizer per model of a list** (k-fold cross-validation): ``optimizers =
  [optim.Adadelta(m.parameters()) for m in models]`` builds optimizer i over model i, and the
  name stepped holds ``optimizers[fold]`` (followed through assignments, and through the
  parameters of module-level functions that every caller in the file hands it). Each model of
  ``models`` is trained by its own optimizer, so every one is frozen, above the comprehension.
- **An optimizer handed to a trainer**: ``self.optimizer = optimizer`` in ``__init__``, built
  by a caller in another file. Its constructor is out of view, but a parameter that requires
  no gradient never gets one, and a torch optimizer skips every parameter whose grad is None
  (no state, no weight decay, no update), so freezing the model whose forward computes the
  loss is right whatever parameters the caller handed the optimizer. It is done where
  ``__init__`` binds that model from its own parameter, above the optimizer's binding (and so
  above a DDP wrap later in ``__init__``). It is refused where that is not provably the model
  the step trains: several models called, the model bound anywhere else, or bound after the
  optimizer; and where a frozen parameter could keep a gradient from before the freeze (a
  ``zero_grad(set_to_none=False)``: zeros, not None, which an optimizer with momentum or
  weight decay still applies).

A function handed both its model and its optimizer (``def train(model, loader, optimizer)``)
is not resolved: its caller may have wrapped the model in DDP or FSDP already, and a freeze
after that wrap comes too late (see :mod:`freezegen.codemod.placement`).
"""

from __future__ import annotations

import libcst as cst

from freezegen.check.context import OPTIMIZERS
from freezegen.check.names import dotted
from freezegen.codemod.fabric import argument_for
from freezegen.codemod.script import (
    CannotAct,
    OptimizerSite,
    Script,
    says_optimizer,
    simple_statements,
    target_names,
)

_DEPTH = 4
"""How many callers up a parameter is followed to the list it is an element of."""


def optimizer_elsewhere(script: Script) -> OptimizerSite | None:
    """The site of the optimizer the script steps when it is one of a list built per model or
    handed to a trainer's ``__init__`` (see the module docstring); None when it is neither.
    Raises CannotAct when it is handed in but the model it trains cannot be told safely."""
    for call in script.calls:
        receiver = _stepped(call)
        if receiver is None:
            continue
        function = script.function_of(call)
        found = element_of(script, receiver, function)
        if found is not None:
            site = _per_model(script, *found)
            if site is not None:
                return site
        if receiver.startswith("self.") and function is not None:
            site = _handed_to_trainer(script, receiver, call, function)
            if site is not None:
                return site
    return None


def _stepped(call: cst.Call) -> str | None:
    """``optimizer`` for ``optimizer.step()`` (a name that reads as an optimizer's)."""
    func = call.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "step"):
        return None
    receiver = dotted(func.value)
    return receiver if receiver is not None and says_optimizer(receiver) else None


# --- one optimizer per model of a list ---------------------------------------------------


def element_of(
    script: Script, name: str, function: cst.FunctionDef | None, depth: int = 0
) -> tuple[str, cst.FunctionDef | None] | None:
    """The list ``L`` (and the function binding it) when ``name``, read in ``function``, holds
    an element ``L[i]`` on every path: bound once there to one (``model, optimizer =
    models[fold], optimizers[fold]``), or a parameter of a module-level function that every
    call in the file hands such a name. None otherwise."""
    if depth > _DEPTH or "." in name:
        return None
    values = _bindings(script, name, function)
    if function is not None and name in _parameters(function):
        if values:
            return None  # rebound inside: which value reaches the step is a question of paths
        return _every_caller_hands_element(script, function, name, depth)
    if len(values) != 1:
        return None
    value = values[0]
    if isinstance(value, cst.Subscript) and isinstance(value.value, cst.Name):
        return value.value.value, function
    if isinstance(value, cst.Name):
        return element_of(script, value.value, function, depth + 1)
    return None


def _every_caller_hands_element(
    script: Script, function: cst.FunctionDef, name: str, depth: int
) -> tuple[str, cst.FunctionDef | None] | None:
    if script.parents.get(id(function)) is not script.module:
        return None  # a method or a nested function: its callers are not all in view
    positional = [*function.params.posonly_params, *function.params.params]
    index = next((i for i, p in enumerate(positional) if p.name.value == name), None)
    found: set[tuple[str, int]] = set()
    owners: dict[int, cst.FunctionDef | None] = {}
    for call in script.calls:
        if dotted(call.func) != function.name.value:
            continue
        arg = argument_for(call, name, index)
        handed = dotted(arg) if arg is not None else None
        caller = script.function_of(call)
        element = element_of(script, handed, caller, depth + 1) if handed else None
        if element is None:
            return None
        found.add((element[0], id(element[1])))
        owners[id(element[1])] = element[1]
    if len(found) != 1:
        return None
    ((list_name, key),) = found
    return list_name, owners[key]


def _per_model(
    script: Script, optimizers: str, function: cst.FunctionDef | None
) -> OptimizerSite | None:
    """The site of ``optimizers = [Optimizer(m.parameters(), ...) for m in models]`` in
    ``function``: ``each`` is ``models``, ``model`` the comprehension's name for one of them.
    None when ``optimizers`` is bound otherwise, or its elements or the models' are replaced
    by anything but a wrap of the same element (``fabric.setup(models[i], optimizers[i])``)."""
    values = _bindings(script, optimizers, function)
    if len(values) != 1 or not isinstance(values[0], cst.ListComp):
        return None
    comp = values[0]
    element = comp.elt
    for_in = comp.for_in
    if (
        not isinstance(element, cst.Call)
        or for_in.inner_for_in is not None
        or for_in.ifs
        or not isinstance(for_in.target, cst.Name)
        or not isinstance(for_in.iter, cst.Name)
    ):
        return None
    callee = script.names.qualified(element.func) or dotted(element.func) or ""
    if callee.rpartition(".")[2] not in OPTIMIZERS:
        return None
    stmt = script.statement_of(comp)
    models = for_in.iter.value
    if stmt is None or script.assigned_value(models, stmt) is None:
        return None  # the models are not built above, in the same block
    site = script._optimizer(stmt, element, optimizers)
    if site.model != for_in.target.value:
        return None
    if not all(_keeps_elements(script, name, function) for name in (optimizers, models)):
        return None
    return OptimizerSite(
        stmt, element, optimizers, site.model, site.params, site.anchor, each=models
    )


def _keeps_elements(script: Script, name: str, function: cst.FunctionDef | None) -> bool:
    """True when every assignment to an element of ``name`` in ``function`` hands that element
    to the call it assigns (a wrap of the same object: ``models[i], optimizers[i] =
    fabric.setup(models[i], optimizers[i])``)."""
    for small in _assignments(script, function):
        for target in small.targets:
            elements = (
                [e.value for e in target.target.elements]
                if isinstance(target.target, (cst.Tuple, cst.List))
                else [target.target]
            )
            for element in elements:
                if not (isinstance(element, cst.Subscript) and dotted(element.value) == name):
                    continue
                value = small.value
                if not isinstance(value, cst.Call) or not any(
                    script.code(a.value) == script.code(element) for a in value.args
                ):
                    return False
    return True


def model_at_step(script: Script, site: OptimizerSite, function: cst.FunctionDef | None) -> str:
    """The name, read in ``function`` (the step's), of the model ``site``'s optimizer trains:
    ``site.model``, or for one optimizer per model of a list the one name there that holds an
    element of that list. Raises CannotAct when none or several do."""
    if site.each is None:
        if site.model is None:
            raise CannotAct(site.call, "cannot tell which model this optimizer trains")
        return site.model
    names = sorted(
        n
        for n in (_parameters(function) if function else set()) | script.bound_in(function)
        if (found := element_of(script, n, function)) is not None and found[0] == site.each
    )
    if len(names) != 1:
        said = ", ".join(f"`{n}`" for n in names) or "no name"
        raise CannotAct(
            site.call,
            f"one optimizer is built per model of `{site.each}`, and {said} in "
            f"{_where(function)} holds one of them: the codemod cannot tell which model the "
            "step trains",
        )
    return names[0]


def _where(function: cst.FunctionDef | None) -> str:
    return f"{function.name.value}()" if function is not None else "the module"


# --- an optimizer handed to a trainer ----------------------------------------------------


def _handed_to_trainer(
    script: Script, receiver: str, step: cst.Call, function: cst.FunctionDef
) -> OptimizerSite | None:
    """The site of ``self.optimizer = optimizer`` in the ``__init__`` of the class whose method
    steps it: the model is the one instance attribute that its methods call and that
    ``__init__`` binds from a parameter of its own, above the optimizer. None when the
    optimizer is not bound that way; raises CannotAct when it is, but the model cannot be
    told or a freeze above the binding would not be right (see the module docstring)."""
    cls = _class_of(script, function)
    init = next(
        (
            s
            for s in (cls.body.body if cls is not None else ())
            if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"
        ),
        None,
    )
    if cls is None or init is None:
        return None
    bindings = _class_bindings(script, cls, receiver)
    if len(bindings) != 1:
        return None
    binding, value = bindings[0]
    if (
        script.function_of(binding) is not init
        or not isinstance(value, cst.Name)
        or value.value not in _parameters(init)
    ):
        return None
    stmt = script.statement_of(binding)
    assert stmt is not None
    model, model_binding = _trained_attribute(script, cls, init, receiver, step)
    block = script.parents.get(id(stmt))
    model_stmt = script.statement_of(model_binding)
    if model_stmt is None or script.parents.get(id(model_stmt)) is not block:
        raise CannotAct(
            model_binding,
            f"`{model}` is bound here, not in the block of __init__ that binds `{receiver}` "
            f"(line {script.line(stmt)}), so the codemod cannot place one freeze after the "
            "one and with the other",
        )
    assert isinstance(block, (cst.Module, cst.IndentedBlock))
    order = [id(s) for s in block.body]
    if order.index(id(model_stmt)) > order.index(id(stmt)):
        raise CannotAct(
            model_binding,
            f"`{model}` is bound here, after `{receiver}` (line {script.line(stmt)}): bind "
            "the model first, so that it can be frozen before the optimizer is taken",
        )
    _refuse_stale_gradients(script, cls)
    return OptimizerSite(
        stmt, step, receiver, model, None, stmt, handed=f"{cls.name.value}.__init__()"
    )


def _trained_attribute(
    script: Script, cls: cst.ClassDef, init: cst.FunctionDef, optimizer: str, step: cst.Call
) -> tuple[str, cst.Assign]:
    """The instance attribute the step trains: the one called in the class's methods that
    ``__init__`` binds from a parameter of its own (moves kept: ``self.model =
    model.to(rank)``), and its binding there; every other binding of it in the class must
    keep the same model (``self.model = DDP(self.model, ...)`` in ``__init__`` below it).
    Raises CannotAct when no attribute or several qualify, or one is bound otherwise."""
    from freezegen.codemod.placement import _strip_moves

    called = sorted(
        {
            name
            for call in script.calls_in(cls)
            if isinstance(call.func, cst.Attribute)
            and (name := dotted(call.func)) is not None
            and name.startswith("self.")
            and name.count(".") == 1
            and name != optimizer
            and script.function_of(call) is not init
        }
    )
    candidates = []
    for name in called:
        bindings = _class_bindings(script, cls, name)
        first = next(
            (
                (b, v)
                for b, v in bindings
                if script.function_of(b) is init
                and isinstance(base := _strip_moves(v), cst.Name)
                and base.value in _parameters(init)
            ),
            None,
        )
        if first is not None:
            candidates.append((name, first, bindings))
    if len(candidates) != 1:
        found = (
            "no model the class calls is bound there from a parameter"
            if not candidates
            else "the class calls several models bound there from parameters ("
            + ", ".join(f"`{n}`" for n, _, _ in candidates)
            + ")"
        )
        raise CannotAct(
            step,
            f"`{optimizer}` is handed to {cls.name.value}.__init__() by its caller, and "
            f"{found}: the codemod cannot tell which model it trains",
        )
    name, (binding, _), bindings = candidates[0]
    for other, value in bindings:
        if other is binding:
            continue
        base = _strip_moves(value)
        keeps = dotted(base) == name or (
            isinstance(base, cst.Call)
            and any(dotted(_strip_moves(a.value)) == name for a in base.args if a.keyword is None)
        )
        if (
            not keeps
            or script.function_of(other) is not init
            or script.line(other) < script.line(binding)
        ):
            raise CannotAct(
                other,
                f"`{name}` is bound again here, not to a wrap of the model __init__ binds at "
                f"line {script.line(binding)}: the codemod cannot tell which model "
                f"`{optimizer}` trains",
            )
    return name, binding


def _refuse_stale_gradients(script: Script, cls: cst.ClassDef) -> None:
    """Raise CannotAct for a ``zero_grad(set_to_none=False)`` in the class: a parameter the
    caller's code gave a gradient before the freeze would keep it as zeros, which an optimizer
    with momentum or weight decay still applies; None (the default since torch 2.0) is skipped."""
    for call in script.calls_in(cls):
        if not (dotted(call.func) or "").endswith(".zero_grad"):
            continue
        for arg in call.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword == "set_to_none" and script.code(arg.value) != "True":
                raise CannotAct(
                    call,
                    "gradients are zeroed here without set_to_none=True: a parameter frozen "
                    "after the caller's own backward would keep a zero gradient, which an "
                    "optimizer built out of view may still apply (momentum, weight decay); "
                    "pass set_to_none=True",
                )


# --- bindings ----------------------------------------------------------------------------


def _parameters(function: cst.FunctionDef) -> set[str]:
    p = function.params
    return {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}


def _assignments(script: Script, function: cst.FunctionDef | None) -> list[cst.Assign]:
    """The assignments made in ``function`` itself (the module's when None)."""
    scope: cst.CSTNode = function if function is not None else script.module
    return [
        small
        for stmt in simple_statements(scope)
        if script.function_of(stmt) is function
        for small in stmt.body
        if isinstance(small, cst.Assign)
    ]


def _bindings(
    script: Script, name: str, function: cst.FunctionDef | None
) -> list[cst.BaseExpression]:
    """The values ``function`` itself assigns to ``name``, a tuple target paired with a tuple
    value element by element (``model, optimizer = models[fold], optimizers[fold]``); a value
    that cannot be paired is the whole right-hand side."""
    values: list[cst.BaseExpression] = []
    for small in _assignments(script, function):
        for target in small.targets:
            if name not in target_names(target.target):
                continue
            values.append(_paired(target.target, small.value, name))
    return values


def _paired(target: cst.BaseExpression, value: cst.BaseExpression, name: str) -> cst.BaseExpression:
    """The part of ``value`` that ``target`` binds to ``name``."""
    pairs = (
        isinstance(target, (cst.Tuple, cst.List))
        and isinstance(value, (cst.Tuple, cst.List))
        and len(target.elements) == len(value.elements)
        and not any(isinstance(e, cst.StarredElement) for e in (*target.elements, *value.elements))
    )
    if pairs:
        for t, v in zip(target.elements, value.elements, strict=True):  # type: ignore[union-attr]
            if name in target_names(t.value):
                return _paired(t.value, v.value, name)
    return value


def _class_bindings(
    script: Script, cls: cst.ClassDef, name: str
) -> list[tuple[cst.Assign, cst.BaseExpression]]:
    """Every ``name = ...`` (``self.model = ...``) in the methods of ``cls``, with its value."""
    return [
        (small, _paired(target.target, small.value, name))
        for stmt in simple_statements(cls)
        for small in stmt.body
        if isinstance(small, cst.Assign)
        for target in small.targets
        if name in target_names(target.target)
    ]


def _class_of(script: Script, function: cst.FunctionDef) -> cst.ClassDef | None:
    parent = script.parents.get(id(function))
    if isinstance(parent, cst.IndentedBlock):
        parent = script.parents.get(id(parent))
    return parent if isinstance(parent, cst.ClassDef) else None
