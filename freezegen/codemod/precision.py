"""Mixed precision: autocast around forward + loss, and for fp16 a GradScaler whose scale,
unscale_, step and update sit where docs/architecture.md puts them (unscale_ before clipping)."""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import SCALERS, dotted
from freezegen.check.rules._calls import add_keyword, keyword
from freezegen.codemod import edits, fabric_edits
from freezegen.codemod.device import device_type
from freezegen.codemod.existing import (
    AutocastSite,
    accelerator_calls,
    accelerator_statement,
    keep_amp_switch,
    keep_autocast,
    own_autocast,
    own_precision_setup,
    refuse_hidden_keyword,
)
from freezegen.codemod.knobs import compose
from freezegen.codemod.options import CodemodOptions
from freezegen.codemod.saved_forward import saved_forwards
from freezegen.codemod.scaler import add_scaler, has_scaler
from freezegen.codemod.script import (
    Backward,
    CannotAct,
    Script,
    YoursToSet,
    foreign_backward,
    raise_kept,
    simple_statements,
    statement_targets,
    used_names,
    zeroes_only,
)
from freezegen.codemod.transform import Notes
from freezegen.codemod.versions import too_old

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def precision(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Wrap forward + loss in torch.amp.autocast; for fp16 add a GradScaler."""
    if options.precision is None:
        return None
    back = script.backward
    if back.style == "accelerate":
        return _accelerate(script, back, options.precision, notes)
    if back.style == "fabric":
        return fabric_edits.precision(script, back, options.precision, notes)
    torch = script.names.local_for("torch")
    if torch is None:
        raise CannotAct(back.call, "the script does not `import torch`")
    changes: dict[int, edits.Replace] = {}
    own = (
        own_autocast(script, loss_statements(script, back))
        or _autocast_over_forward(script, back)
        or own_autocast(script, list(saved_forwards(script, back, script.trained_model)))
    )
    if own is None:
        setup = own_precision_setup(script, script.trained_model)
        if setup is not None:
            return _own_policy(script, *setup, DTYPES[options.precision])
        scalers = _scalers(script)
        if scalers:
            raise CannotAct(
                scalers[0],
                "the script already creates a GradScaler but runs no autocast around its loss "
                f"(line {script.line(back.stmt)}); finish its own mixed precision instead of "
                "adding a second one",
            )
        region = forward_region(script, back)
        if why := too_old(script.pins, "torch", "1.10", "torch.amp.autocast(device_type, ...)"):
            raise CannotAct(region[0], why)
        region = _autocast_above_unsafe_loss(script, region, changes, notes)
        regions = [region]
        try:
            refuse_without_forward(script, region, back)
        except CannotAct:  # the model may have run while the script acted, saving its outputs
            regions = [[s] for s in saved_forwards(script, back, script.trained_model)]
            if not regions:
                raise
            _note_saved_forwards(script, back, [r[0] for r in regions], options.precision, notes)
        dtype = DTYPES[options.precision]
        for region in regions:
            device = device_type(script, region[0], script.trained_model)
            header = f"with {torch}.amp.autocast({device}, dtype={torch}.{dtype})"
            wrapped = edits.wrap(header, region)
            changes[id(region[0])] = lambda _, wrapped=wrapped: [wrapped]
            for stmt in region[1:]:
                changes[id(stmt)] = lambda _: []
    else:
        keep_amp_switch(script, own, back, options.precision)
        swaps = keep_autocast(script, own, options.precision)
        if swaps:
            _note_retargeted(script, own[0], _scalers(script), notes)
            return edits.apply(script.module, {}, swaps)
    if options.precision == "fp16" and back.style == "tensor" and not has_scaler(script):
        add_scaler(script, back, torch, changes)
    return edits.apply(script.module, changes) if changes else None


def _note_saved_forwards(
    script: Script,
    back: Backward,
    forwards: list[cst.BaseStatement],
    precision: str,
    notes: Notes,
) -> None:
    """Say where autocast went when the model ran outside the function of the loss, and that
    this function also decides what the script does with those outputs (a policy's actions)."""
    for stmt in forwards:
        function = script.function_of(stmt)
        where = f"in {function.name.value}()" if function is not None else "at module level"
        notes.append(
            (
                stmt,
                f"autocast covers this call of the model {where}: its outputs are saved on the "
                f"model and reach the loss of line {script.line(back.stmt)} later; everything "
                f"else read from them here is computed from {precision} outputs too (a policy's "
                "sampled actions, a critic's values), not only the loss",
            )
        )


def _autocast_over_forward(script: Script, back: Backward) -> AutocastSite | None:
    """The script's own autocast around its forward pass when the loss is computed below it,
    outside (a loss kept in float32 on purpose, as this codemod leaves binary_cross_entropy);
    None when there is none or the forward pass cannot be found."""
    try:
        region = forward_region(script, back)
    except CannotAct:
        return None
    return own_autocast(script, [line for stmt in region for line in simple_statements(stmt)])


_POLICIES = ("MixedPrecisionPolicy", "MixedPrecision")
"""FSDP's mixed precision: parameters cast to ``param_dtype`` for compute, fp32 kept to
update, which is what autocast in that dtype gives a script without FSDP."""


def _own_policy(script: Script, call: cst.Call, what: str, dtype: str) -> None:
    """The script's own precision setup, other than autocast: nothing to add when it is an
    FSDP mixed precision policy whose ``param_dtype`` is literally ``dtype``; kept for the user
    (:class:`YoursToSet`) when such a policy is only used under ``if <setting>:``; otherwise
    CannotAct, pointing at it."""
    callee = (script.names.qualified(call.func) or dotted(call.func) or "").rpartition(".")[2]
    if callee == "set_default_dtype" and dtype == "bfloat16":
        _keep_run_time_dtype(script, call, what)
    param_dtype = keyword(call, "param_dtype")
    if callee in _POLICIES and param_dtype is not None:
        value = script.names.qualified(param_dtype.value) or dotted(param_dtype.value)
        if value == f"torch.{dtype}":
            switch = next((a for a in script.ancestors(call) if isinstance(a, cst.If)), None)
            if switch is None:
                return None
            if dotted(switch.test) is not None:  # a plain setting: `if args.mixed_precision:`
                setting = script.code(switch.test)
                raise YoursToSet(
                    call,
                    f"the script already sets its precision with {what} in {dtype}, when "
                    f"`{setting}` is true (line {script.line(switch)}); set {setting} to True "
                    "yourself",
                )
    raise CannotAct(
        call,
        f"the script already sets its precision here with {what}; set it to {dtype} there "
        "instead of adding autocast on top",
    )


_DTYPE_WORDS = ("float", "half", "double", "bfloat16")


def _keep_run_time_dtype(script: Script, call: cst.Call, what: str) -> None:
    """Raise :class:`YoursToSet` when ``set_default_dtype(x)`` takes a dtype the script reads
    at run time (torchtune's ``self._dtype = training.get_dtype(cfg.dtype, ...)``): every
    assignment of ``x`` in the file is a call, attribute or subscript naming no dtype. A dtype
    written in the file (or a parameter whose caller is unknown) returns: the refusal says to
    set it there. Only for bf16: pure fp16 without loss scaling is not the same run at all."""
    if len(call.args) != 1 or call.args[0].keyword is not None:
        return
    name = dotted(call.args[0].value)
    if name is None:
        return
    values = [
        small.value
        for stmt in simple_statements(script.module)
        for small in stmt.body
        if isinstance(small, (cst.Assign, cst.AnnAssign))
        and small.value is not None
        and name
        in (
            [dotted(t.target) for t in small.targets]
            if isinstance(small, cst.Assign)
            else [dotted(small.target)]
        )
    ]
    if not values or not all(
        isinstance(v, (cst.Call, cst.Attribute, cst.Subscript))
        and not any(w in used for used in used_names(v) for w in _DTYPE_WORDS)
        for v in values
    ):
        return
    source = values[0]
    raise YoursToSet(
        call,
        f"the script already sets its precision with {what}, from `{name}` (line "
        f"{script.line(source)}: `{script.code(source)}`), a value it reads at run time; set "
        "that to bfloat16 yourself: the model then trains in pure bfloat16 (weights, gradients "
        "and optimizer states), the script's own way, with no autocast added on top",
        CannotAct(
            call,
            f"the script already sets its precision here with {what}; set it to bfloat16 there "
            "instead of adding autocast on top",
        ),
    )


def _scalers(script: Script) -> list[cst.Call]:
    """The script's own ``GradScaler(...)`` constructions."""
    targets = script.names.targets_of(*SCALERS)
    return [call for target, call in script.names.constructed if target in targets]


def _note_retargeted(
    script: Script, statement: cst.With, scalers: list[cst.Call], notes: Notes
) -> None:
    scaler = (
        f"; its GradScaler (line {script.line(scalers[0])}) stays: harmless with bf16, which "
        "has fp32's range, but no longer needed"
        if scalers
        else ""
    )
    notes.append(
        (
            statement,
            f"the script's own autocast (line {script.line(statement)}) now runs in bf16 instead "
            f"of fp16{scaler}",
        )
    )


def loss_statements(script: Script, back: Backward) -> list[cst.CSTNode]:
    """The backward statement and the assignments of its loss: where an autocast may already be."""
    container = back.loop or back.function or script.module
    return [back.stmt, *_assignments(script, container, _loss_names(back.loss))]


def _assignments(script: Script, container: cst.CSTNode, names: set[str]) -> list[cst.CSTNode]:
    return [stmt for stmt in simple_statements(container) if names & statement_targets(stmt)]


def _loss_names(expr: cst.BaseExpression) -> set[str]:
    """The names whose assignment computes the loss ``expr``: its dotted chain and each prefix
    (``self.loss`` for ``self.loss``; ``outputs.loss`` and ``outputs`` for ``outputs.loss``)."""
    while isinstance(expr, (cst.Subscript, cst.BinaryOperation)):
        expr = expr.left if isinstance(expr, cst.BinaryOperation) else expr.value
    chain = dotted(expr) or ""
    parts = chain.split(".")
    return {".".join(parts[: i + 1]) for i in range(len(parts))} if chain else set()


def _base_name(expr: cst.BaseExpression) -> str | None:
    while isinstance(expr, (cst.Attribute, cst.Subscript, cst.BinaryOperation)):
        expr = expr.left if isinstance(expr, cst.BinaryOperation) else expr.value
    return expr.value if isinstance(expr, cst.Name) else None


_DATA_CALLS = frozenset(
    [
        "to",
        "cuda",
        "cpu",
        "float",
        "half",
        "long",
        "int",
        "bool",
        "next",
        "iter",
        "len",
        "view",
        "reshape",
        "squeeze",
        "unsqueeze",
        "permute",
        "contiguous",
        "clone",
        "detach",
        "items",
        "keys",
        "values",
        "get",
        "size",
        "item",
        "numpy",
        "tolist",
        "pin_memory",
        "append",
        # builtins that only count, index or convert
        "min",
        "max",
        "abs",
        "range",
        "enumerate",
        "zip",
        "isinstance",
        "print",
        "str",
        "tuple",
        "list",
        "dict",
    ]
)
"""Calls that move or reshape data: a statement making only these computes no forward pass."""


def forward_region(script: Script, back: Backward) -> list[cst.BaseStatement]:
    """The statements above the backward call that compute the loss: from the first statement
    whose results flow into the loss (def-use over the block, not adjacency) and that computes
    something, down to the loss assignment, less the statements in between that only zero
    gradients (left where they are: they then run after the forward pass, still before the
    backward call, which is the same thing). Raises CannotAct when a statement in between steps
    or clips: it would end up under autocast."""
    base = _base_name(back.loss)
    if base is None:
        raise CannotAct(back.call, "the loss is computed inside the backward statement")
    body = list(back.block.body)
    at = next(i for i, s in enumerate(body) if s is back.stmt)
    names = _loss_names(back.loss) or {base}
    j = next((i for i in range(at - 1, -1, -1) if names & statement_targets(body[i])), None)
    if j is None:
        raise CannotAct(
            back.call,
            f"no `{base} = ...` above the backward call in its block, so the forward pass "
            "cannot be found",
        )
    needed, start = _data_names(body[j]), j
    for k in range(j - 1, -1, -1):
        stmt = body[k]
        if not _defined(stmt) & needed:
            continue
        needed |= _data_names(stmt)
        if _computes(script, stmt):
            start = k
    region = [stmt for stmt in body[start : j + 1] if not zeroes_only(stmt)]
    for stmt in region:
        if script.boundary_statements(stmt):
            raise CannotAct(
                stmt,
                "this statement steps or clips gradients between the first statement "
                f"that feeds the loss (line {script.line(region[0])}) and the loss (line "
                f"{script.line(body[j])}); move it below the backward call so autocast can "
                "cover the forward pass alone",
            )
    return region


def _data_names(node: cst.CSTNode) -> set[str]:
    """The names ``node`` reads as values: every name but those it only calls directly
    (``loss_fn(out, y)``, ``ddp_model(x)``). The statement that builds a model or a loss module
    is no part of the forward pass, so following it would pull construction under autocast
    where the step is not in a loop (the DDP demo builds, steps once, and returns)."""
    called: set[int] = set()
    names: set[str] = set()

    class _Values(cst.CSTVisitor):
        def visit_Call(self, n: cst.Call) -> None:
            if isinstance(n.func, cst.Name):
                called.add(id(n.func))

        def visit_Name(self, n: cst.Name) -> None:
            if id(n) not in called:
                names.add(n.value)

    node.visit(_Values())
    return names


_UNSAFE_TO_AUTOCAST = ("binary_cross_entropy", "BCELoss")
"""Losses CUDA autocast refuses to run ("unsafe to autocast": they take probabilities, which
float16 cannot hold near 0 and 1); the logits forms are the ones autocast allows."""


def _unsafe_call(script: Script, stmt: cst.CSTNode) -> cst.Call | None:
    """The call in ``stmt`` that computes a loss autocast refuses: directly, through a loss
    module built in this file, or inside a function of this file that it calls (one level, as
    a script's ``loss_function(...)`` is written); None when there is none."""
    modules = script.names.targets_of("BCELoss")

    def unsafe(node: cst.CSTNode, follow: bool) -> cst.Call | None:
        for call in script.calls_in(node):
            callee = script.names.qualified(call.func) or dotted(call.func) or ""
            inner = call.func.func if isinstance(call.func, cst.Call) else None
            inline = inner is not None and (dotted(inner.func) or "").endswith("BCELoss")
            if callee.rpartition(".")[2] in _UNSAFE_TO_AUTOCAST or callee in modules or inline:
                return call
            defs = script.module_functions(callee) if follow else []
            if defs and unsafe(defs[-1], False) is not None:  # the last def is the one bound
                return call
        return None

    return unsafe(stmt, True)


def _autocast_above_unsafe_loss(
    script: Script,
    region: list[cst.BaseStatement],
    changes: dict[int, edits.Replace],
    notes: Notes,
) -> list[cst.BaseStatement]:
    """The statements of ``region`` that go under autocast: all of them, unless one computes a
    loss autocast refuses to run (binary_cross_entropy). Then autocast covers the forward pass
    above it, and that statement and the rest of the region stay outside in float32 with the
    model's outputs cast back (``recon.float()``), as torch's AMP docs advise for ops that are
    unsafe in low precision; the edits of those statements go into ``changes``.

    Raises CannotAct when that split is not clean: the statement runs the model itself, the
    statements below run it again, or they read a forward output other than as a whole tensor
    (``out.logits``, ``out[0]``, a reassignment), which a ``.float()`` could not cover."""
    unsafe = next(
        ((i, call) for i, stmt in enumerate(region) if (call := _unsafe_call(script, stmt))),
        None,
    )
    if unsafe is None:
        return region
    at, call = unsafe
    head, tail = region[:at], region[at:]
    model = script.trained_model
    outputs = {
        name
        for stmt in head
        if model is not None and _runs(script, stmt, model)
        for name in _defined(stmt)
    }
    refusal = (
        "this loss uses binary_cross_entropy (BCELoss), which autocast refuses to run on CUDA "
        "(unsafe to autocast), and it cannot be left outside autocast here: "
    )
    if not head or not outputs:
        raise CannotAct(
            call,
            refusal + "no statement above it runs the model on its own; compute the model's "
            "output in a statement of its own above the loss, or compute the loss from logits "
            "with binary_cross_entropy_with_logits (BCEWithLogitsLoss)",
        )
    defined_above = set().union(*(_defined(stmt) for stmt in head))
    casts: list[str] = []
    for stmt in tail:
        if model is not None and _runs(script, stmt, model):
            raise CannotAct(stmt, refusal + f"this statement runs {model} again below it")
        swaps: dict[int, cst.BaseExpression] = {}
        for name in _loads(script, stmt, defined_above):
            parent = script.parents.get(id(name))
            method = isinstance(parent, cst.Attribute) and parent.attr.value in _TENSOR_METHODS
            if name.value not in outputs or (
                isinstance(parent, (cst.Attribute, cst.Subscript)) and not method
            ):
                raise CannotAct(
                    name,
                    refusal + f"it reads `{script.code(parent or name)}`, which is not a "
                    "whole output of the model that a .float() could bring back to float32",
                )
            swaps[id(name)] = cst.Call(func=cst.Attribute(value=name, attr=cst.Name("float")))
            casts.append(f"{name.value}.float()")
        if defined_above & _defined(stmt):
            raise CannotAct(stmt, refusal + "it assigns a name the forward pass assigned")
        if swaps:
            changes[id(stmt)] = edits.replace_calls(swaps)
    cast = ", ".join(dict.fromkeys(casts))
    notes.append(
        (
            tail[0],
            "the loss stays outside autocast, in float32: binary_cross_entropy is unsafe to "
            f"autocast; the model's outputs are cast back for it ({cast})",
        )
    )
    return head


def _runs(script: Script, stmt: cst.CSTNode, model: str) -> bool:
    """True when ``stmt`` calls ``model`` or one of its methods (``model(x)``,
    ``model.encode(x)``)."""
    return any(
        (name := dotted(call.func)) is not None and (name == model or name.startswith(model + "."))
        for call in script.calls_in(stmt)
    )


def _loads(script: Script, stmt: cst.CSTNode, names: set[str]) -> list[cst.Name]:
    """The occurrences in ``stmt`` of ``names`` as variables: not an attribute's name, not a
    keyword argument's name."""
    found: list[cst.Name] = []

    class _Visit(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            parent = script.parents.get(id(node))
            if isinstance(parent, cst.Attribute) and parent.attr is node:
                return
            if isinstance(parent, cst.Arg) and parent.keyword is node:
                return
            if node.value in names:
                found.append(node)

    stmt.visit(_Visit())
    return found


def _defined(stmt: cst.CSTNode) -> set[str]:
    """Names assigned anywhere in ``stmt`` (a compound statement's body included)."""
    names: set[str] = set()
    for line in simple_statements(stmt):
        names |= statement_targets(line)
    return names


def _computes(script: Script, stmt: cst.CSTNode, depth: int = 0) -> bool:
    """True when ``stmt`` calls something other than data movement (a forward pass, a loss).

    A call to a function defined in this file computes when its body does (``data, target =
    get_batch(source, i)`` that only slices does not), followed two calls deep; anything else
    unknown computes.
    """
    for call in script.calls_in(stmt):
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else dotted(func) or ""
        if name in _DATA_CALLS:
            continue
        defs = script.module_functions(func.value) if isinstance(func, cst.Name) else []
        helper = defs[0] if len(defs) == 1 and depth < 2 else None
        if helper is None or _computes(script, helper.body, depth + 1):
            return True
    return False


_TENSOR_MATH = frozenset(
    (
        *("sum", "mean", "exp", "log", "std", "var", "abs", "pow", "sqrt", "clamp", "neg"),
        *("norm", "max", "min", "argmax", "gather", "masked_fill", "mul", "add", "sub", "div"),
    )
)
"""Tensor methods that reduce or combine values already computed: never a forward pass."""


_TENSOR_METHODS = _TENSOR_MATH | _DATA_CALLS
"""Methods that show a name holds a tensor (``recon.view(-1, 784)``), which .float() keeps."""


def refuse_without_forward(script: Script, region: list[cst.BaseStatement], back: Backward) -> None:
    """Refuse when no statement of ``region`` can run a forward pass: every call in it is a
    torch function or tensor arithmetic (``torch.cat(saved_log_probs).sum()``). The model then
    ran elsewhere, before the loss was assembled, and autocast here would do nothing."""
    for stmt in region:
        for call in script.calls_in(stmt):
            qualified = script.names.qualified(call.func) or ""
            func = call.func
            method = func.attr.value if isinstance(func, cst.Attribute) else None
            if qualified.startswith("torch.") or method in _TENSOR_MATH | _DATA_CALLS:
                continue
            return
    raise CannotAct(
        region[0],
        "no statement that computes the loss here runs a forward pass (only torch functions "
        f"and tensor arithmetic from line {script.line(region[0])} to the backward call, line "
        f"{script.line(back.stmt)}): the model ran earlier, elsewhere, so autocast here would "
        "do nothing; put the autocast around the model's calls yourself",
    )


def _accelerate(script: Script, back: Backward, precision: str, notes: Notes) -> cst.Module | None:
    """accelerator.backward(loss): Accelerate does AMP itself, given mixed_precision on every
    Accelerator(...) the script builds (each branch). One that already sets another has its
    knob set (the literal, or the option's default it reads); refused when that is not safe."""
    calls = accelerator_calls(script)
    if not calls:
        raise foreign_backward(script, back)
    swaps: dict[int, cst.BaseExpression] = {}
    kept: list[YoursToSet] = []
    for call in calls:
        current = keyword(call, "mixed_precision")
        legacy = keyword(call, "fp16")  # Accelerate's older spelling, which wins over ours
        if legacy is not None:
            raise CannotAct(
                legacy,
                f"Accelerator(...) already sets fp16={script.code(legacy.value)} (the older "
                f"spelling of mixed_precision); replace it with mixed_precision={precision!r}",
            )
        if current is None:
            refuse_hidden_keyword(script, call, "mixed_precision")
            swaps[id(call)] = add_keyword(call, "mixed_precision", f'"{precision}"')
        elif script.code(current.value).strip("'\"") != precision:
            refusal = CannotAct(
                current,
                f"Accelerator(...) already sets mixed_precision={script.code(current.value)}; "
                f"set it to {precision!r} there instead of adding a second autocast",
            )
            wanted = f'"{precision}"'
            try:
                swaps.update(
                    compose(script, [current.value], wanted, "mixed_precision", refusal, notes)
                )
            except YoursToSet as exc:
                kept.append(exc)
    raise_kept(kept, edited=bool(swaps))
    for call in calls:
        if id(call) in swaps:
            accelerator_statement(script, call)
    return edits.apply(script.module, {}, swaps) if swaps else None
