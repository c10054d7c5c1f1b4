"""Transforms at model setup, all placed just above the optimizer: freeze, checkpointing, and
an optimizer that only sees trainable parameters (the order of docs/architecture.md, "The generated
script": build, freeze, checkpointing, optimizer)."""

from __future__ import annotations

import json

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod import edits
from freezegen.codemod.fabric_edits import setup_wraps
from freezegen.codemod.options import HF, CodemodOptions
from freezegen.codemod.script import CannotAct, Script, simple_statements
from freezegen.codemod.transform import Notes
from freezegen.codemod.versions import too_old

_WRAPPER = "torch.distributed.algorithms._checkpoint.checkpoint_wrapper"


def freeze(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Freeze parameters matching ``options.freeze`` right before the optimizer is built."""
    if not options.freeze:
        return None
    site = script.optimizer
    model = _model(site)
    _refuse_unfreezing(script)
    _refuse_after_wrapping(script, model, site.call)
    patterns = ", ".join(json.dumps(p) for p in options.freeze)
    patterns = f"({patterns},)" if len(options.freeze) == 1 else f"({patterns})"
    for loop in script.loops:
        if (
            isinstance(loop, cst.For)
            and script.code(loop.iter) == f"{model}.named_parameters()"
            and patterns in script.code(loop.body)
        ):
            return None
    function = script.function_of(site.stmt)
    name = script.fresh(("param_name",), function)
    param = script.fresh(("param",), function)
    frozen = script.fresh(("frozen",), function)
    # The names are known only when the script runs: a glob that matches nothing must stop it
    # there, not train the whole model as if the freeze had been applied.
    message = json.dumps(f"--freeze {', '.join(options.freeze)} matched no parameter of {model}")
    code = (
        f"{frozen} = 0\n"
        f"for {name}, {param} in {model}.named_parameters():\n"
        f"    if any(fnmatch.fnmatchcase({name}, pattern) for pattern in {patterns}):\n"
        f"        {param}.requires_grad_(False)\n"
        f"        {frozen} += 1\n"
        f"if not {frozen}:\n"
        f"    raise ValueError({message})\n"
    )
    module = edits.apply(script.module, {id(site.anchor): edits.before(edits.statements(code))})
    if not edits.imported(module, "fnmatch", "fnmatch"):
        module = edits.import_edits(module, ["import fnmatch"])
    return module


def checkpointing(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Checkpoint the model's blocks (Hugging Face's switch, or torch's checkpoint_wrapper)."""
    path = options.activation_checkpointing
    if path is None:
        return None
    site = script.optimizer
    if _own_checkpointing(script, site.stmt):
        return None
    model = _model(site)
    imports = []
    if path == HF:
        if not script.is_hf_model(model):
            built = script.model_constructor(model)
            how = f"built by {built}(...)" if built else "not built in this file"
            raise CannotAct(
                site.call,
                f"`{model}` ({how}) is not a Hugging Face model: pass the module path of its "
                "blocks, e.g. --activation-checkpointing blocks",
            )
        code = _hf_checkpointing(script, site.call, model, bool(options.freeze), notes)
    else:
        function = script.function_of(site.stmt)
        index = script.fresh(("index",), function)
        block = script.fresh(("block",), function)
        blocks = f"{model}.{path}"
        # non-reentrant said explicitly: torch < 2.2 defaults to reentrant checkpointing,
        # which drops the gradients of blocks behind frozen layers
        impl = "checkpoint_impl=CheckpointImpl.NO_REENTRANT"
        if why := too_old(script.pins, "torch", "1.12", f"checkpoint_wrapper(..., {impl})"):
            raise CannotAct(site.call, why)
        code = (
            f"for {index}, {block} in enumerate({blocks}):\n"
            f"    {blocks}[{index}] = checkpoint_wrapper({block}, {impl})\n"
        )
        missing = [
            name
            for name in ("CheckpointImpl", "checkpoint_wrapper")
            if not edits.imported(script.module, name, f"{_WRAPPER}.{name}")
        ]
        if missing:
            imports.append(f"from {_WRAPPER} import {', '.join(missing)}")
    module = edits.apply(script.module, {id(site.anchor): edits.before(edits.statements(code))})
    return edits.import_edits(module, imports)


NON_REENTRANT = "4.35"
"""The first transformers whose gradient_checkpointing_enable takes gradient_checkpointing_kwargs
(and so use_reentrant=False); before it, Hugging Face models checkpoint reentrantly."""


def _hf_checkpointing(
    script: Script, optimizer: cst.Call, model: str, freezing: bool, notes: Notes
) -> str:
    """The statement turning on Hugging Face checkpointing for the transformers the project
    pins: non-reentrant when its pins require 4.35 or later, or say nothing (an older one then
    stops with a TypeError at this line, never trains wrongly); the call without arguments
    when they admit older versions and nothing is frozen. Raises CannotAct when they admit
    older versions and parameters are frozen (by ``--freeze`` or the script): reentrant
    checkpointing behind frozen layers gets inputs that need no gradient and drops the
    gradients of the blocks it wraps (FG1xx's reentrant rule)."""
    pin = script.pins.older_than("transformers", NON_REENTRANT)
    if pin is None:
        if not script.pins.pinned("transformers"):
            notes.append(
                (
                    optimizer,
                    f"gradient_checkpointing_kwargs needs transformers >= {NON_REENTRANT}; no "
                    "requirements file of this project pins transformers, so make sure the "
                    "environment that runs it has such a version (an older one raises TypeError)",
                )
            )
        return (
            f"{model}.gradient_checkpointing_enable("
            'gradient_checkpointing_kwargs={"use_reentrant": False})\n'
        )
    if freezing or _freezes(script):
        raise CannotAct(
            optimizer,
            f"{pin.describe()}, which admits transformers before {NON_REENTRANT}: there "
            "gradient_checkpointing_enable() takes no gradient_checkpointing_kwargs and "
            "checkpoints reentrantly, which drops the gradients of blocks behind frozen layers; "
            f"require transformers>={NON_REENTRANT} there",
        )
    notes.append(
        (
            optimizer,
            f"{pin.describe()}, which admits transformers before {NON_REENTRANT}, so "
            "checkpointing is turned on without gradient_checkpointing_kwargs, which is "
            f"reentrant: before freezing layers, require transformers>={NON_REENTRANT} "
            'and pass gradient_checkpointing_kwargs={"use_reentrant": False}',
        )
    )
    return f"{model}.gradient_checkpointing_enable()\n"


def _freezes(script: Script) -> bool:
    """True when the script turns requires_grad off somewhere (it freezes on its own)."""
    for call in script.calls:
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "requires_grad_"
            and call.args
            and script.code(call.args[0].value) == "False"
        ):
            return True
    return any(
        isinstance(small, cst.Assign)
        and any(
            isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad"
            for t in small.targets
        )
        and script.code(small.value) == "False"
        for stmt in simple_statements(script.module)
        for small in stmt.body
    )


def trainable_only(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Hand the optimizer only the parameters that require grad."""
    if not options.trainable_only_optimizer:
        return None
    site = script.optimizer
    if site.params is None:
        if site.model is not None:  # model.configure_optimizers(...)
            notes.append(
                (
                    site.call,
                    f"the optimizer comes from {script.code(site.call.func)}(...), left alone: "
                    "it must keep only parameters with requires_grad",
                )
            )
            return None
        raise CannotAct(site.call, "the optimizer is built without parameters in view")
    value = site.params.value
    if "requires_grad" in script.code(value):
        return None
    if isinstance(site.anchor, (cst.If, cst.Try)):  # built on several paths: edit each or none
        raise CannotAct(
            site.call,
            "the optimizer is built on several paths; hand each one "
            "[p for p in model.parameters() if p.requires_grad]",
        )
    if (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == "parameters"
    ):
        comp = cst.parse_expression(f"[p for p in {script.code(value)} if p.requires_grad]")
        return edits.apply(script.module, {id(site.stmt): edits.replace_call(value, comp)})
    if isinstance(value, cst.Name):
        assigned = script.assigned_value(value.value, site.stmt)
        if assigned is not None:
            if "requires_grad" in script.code(assigned):
                return None
            stmt = script.statement_of(assigned)
            comps = _comprehensions(assigned)
            if stmt is not None and comps:
                return edits.apply(script.module, {id(stmt): _filter_edit(comps)})
    raise CannotAct(
        value,
        f"cannot tell which parameters `{script.code(value)}` holds: pass "
        "[p for p in model.parameters() if p.requires_grad]",
    )


_CHECKPOINTING = ("gradient_checkpointing_enable", "checkpoint_wrapper", "checkpoint")


def _own_checkpointing(script: Script, optimizer: cst.CSTNode) -> bool:
    """True when the script checkpoints activations on every path that builds the optimizer;
    raises CannotAct when it does so only under a condition (``if args.gradient_checkpointing:``),
    since adding a second mechanism would not tell the user that theirs is off."""
    around_optimizer = {id(a) for a in script.ancestors(optimizer)}
    found = False
    for call in script.calls:
        name = script.names.qualified(call.func) or dotted(call.func) or ""
        last = name.rpartition(".")[2]
        if last not in _CHECKPOINTING or (last == "checkpoint" and "torch" not in name):
            continue
        condition = next(
            (
                a
                for a in script.ancestors(call)
                if isinstance(a, (cst.If, cst.IfExp)) and id(a) not in around_optimizer
            ),
            None,
        )
        if condition is not None and last != "checkpoint":  # a model's forward may switch it
            test = condition.test
            raise CannotAct(
                call,
                f"the script already checkpoints activations, but only when "
                f"{script.code(test)} (line {script.line(condition)}); turn that on instead "
                "of adding a second checkpointing",
            )
        found = True
    return found


def _refuse_unfreezing(script: Script) -> None:
    """Raise CannotAct when the script turns requires_grad back on somewhere: a freeze added
    above the optimizer could be undone later without a word."""
    for call in script.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_":
            value = call.args[0].value if call.args else None
            if value is None or script.code(value) != "False":
                raise CannotAct(
                    call,
                    "the script turns requires_grad back on here, which may undo the freeze; "
                    "freeze in the script's own code instead",
                )
    for stmt in simple_statements(script.module):
        for small in stmt.body:
            if (
                isinstance(small, cst.Assign)
                and any(
                    isinstance(t.target, cst.Attribute) and t.target.attr.value == "requires_grad"
                    for t in small.targets
                )
                and script.code(small.value) != "False"
            ):
                raise CannotAct(
                    small,
                    "the script sets requires_grad here, which may undo the freeze; "
                    "freeze in the script's own code instead",
                )


_WRAPPERS = ("DistributedDataParallel", "DDP", "FullyShardedDataParallel", "FSDP", "fully_shard")
"""Wrappers that fix, when they are built, which parameters they reduce or shard."""


def _refuse_after_wrapping(script: Script, model: str, optimizer: cst.Call) -> None:
    """Raise CannotAct when ``model`` is wrapped by DDP or FSDP before its optimizer is built:
    a freeze placed above the optimizer would come after the wrap, which has already set up
    gradient reduction for every parameter (DDP then waits for gradients that never come)."""
    wrapped = script.model_constructor(model)
    for call in script.calls:
        callee = script.names.qualified(call.func) or dotted(call.func) or ""
        last = callee.rpartition(".")[2]
        if last not in (*_WRAPPERS, "prepare", "setup", "setup_module") or not call.args:
            continue
        # above the optimizer in its own function: what runs first (a wrap in another
        # function, such as a Trainer's __init__, may well run after the freeze)
        before = script.line(call) < script.line(optimizer) and script.function_of(
            call
        ) is script.function_of(optimizer)
        # Fabric's setup / setup_module wraps like prepare; another object's setup may not
        fabric = last in ("setup", "setup_module")
        if fabric and not setup_wraps(script, call, model):
            continue
        own = callee == wrapped and before and last != "prepare"
        # the model itself wrapped (on any branch), or sharded in place by fully_shard
        in_place = before and script.code(call.args[0].value) == model
        # Accelerate's prepare wraps in DDP or FSDP when the run is distributed
        prepared = (
            last == "prepare" and before and model in (script.code(a.value) for a in call.args)
        )
        set_up = fabric and before
        if own or in_place or prepared or set_up:
            how = (
                "prepared here, before the optimizer: when the run is distributed, prepare "
                "wraps it in DDP or FSDP, which"
                if prepared
                else f"set up by Fabric here ({last}), before the optimizer: when the run is "
                "distributed, Fabric wraps it in DDP or FSDP, which"
                if set_up
                else "wrapped here, before the optimizer, and the wrap"
            )
            raise CannotAct(
                call,
                f"`{model}` is {how} has already set up gradient reduction for every "
                "parameter; freeze the parameters in the script's own code, before this line",
            )


def _model(site: object) -> str:
    model = site.model  # type: ignore[attr-defined]
    if model is None:
        raise CannotAct(site.call, "cannot tell which model this optimizer trains")  # type: ignore[attr-defined]
    return model


Comp = cst.ListComp | cst.GeneratorExp


def _comprehensions(expr: cst.CSTNode) -> list[Comp]:
    """Comprehensions over ``x.parameters()`` / ``x.named_parameters()`` whose element is a name."""
    found: list[Comp] = []

    class _Find(cst.CSTVisitor):
        def visit_ListComp(self, node: cst.ListComp) -> None:
            self._take(node)

        def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
            self._take(node)

        def _take(self, node: Comp) -> None:
            it = node.for_in.iter
            if (
                isinstance(node.elt, cst.Name)
                and node.for_in.inner_for_in is None
                and isinstance(it, cst.Call)
                and isinstance(it.func, cst.Attribute)
                and it.func.attr.value in ("parameters", "named_parameters")
            ):
                found.append(node)

    expr.visit(_Find())
    return found


def _filter_edit(comps: list[Comp]) -> edits.Replace:
    targets = {id(c) for c in comps}

    class _Filter(cst.CSTTransformer):
        def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
            if id(original_node) not in targets:
                return updated_node
            assert isinstance(updated_node, (cst.ListComp, cst.GeneratorExp))
            assert isinstance(updated_node.elt, cst.Name)
            wanted = cst.parse_expression(f"{updated_node.elt.value}.requires_grad")
            for_in = updated_node.for_in
            if not for_in.ifs:
                return updated_node.with_changes(
                    for_in=for_in.with_changes(ifs=[cst.CompIf(test=wanted)])
                )
            *rest, last = for_in.ifs
            test = last.test
            if isinstance(test, (cst.BooleanOperation, cst.IfExp, cst.Lambda)):
                test = edits.paren(test)
            both = cst.BooleanOperation(left=test, operator=cst.And(), right=wanted)
            return updated_node.with_changes(
                for_in=for_in.with_changes(ifs=[*rest, last.with_changes(test=both)])
            )

    def edit(stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        return [stmt.visit(_Filter())]  # type: ignore[list-item]

    return edit
