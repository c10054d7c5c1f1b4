"""Transforms at model setup, placed just above the optimizer: freeze, checkpointing, and an
optimizer that only sees trainable parameters (the order of docs/architecture.md, "The generated
script": build, freeze, checkpointing, optimizer). The freeze goes higher when the model is
wrapped in DDP or FSDP before the optimizer is built: above the wrap (:mod:`placement`)."""

from __future__ import annotations

import json
from dataclasses import replace

import libcst as cst

from freezegen.check.names import dotted
from freezegen.codemod import edits
from freezegen.codemod.freeze_each import (
    freeze_each_code,
    frozen_already,
    refuse_unsure_models,
)
from freezegen.codemod.freeze_each import patterns as freeze_patterns
from freezegen.codemod.hand_step import sole_hand_step
from freezegen.codemod.options import HF, CodemodOptions
from freezegen.codemod.placement import (
    Placement,
    freeze_placement,
    hand_placement,
    runs_before,
    runs_before_calls,
)
from freezegen.codemod.script import (
    CannotAct,
    OptimizerSite,
    Script,
    SeveralModels,
    simple_statements,
    target_names,
)
from freezegen.codemod.transform import Notes
from freezegen.codemod.versions import too_old

_WRAPPER = "torch.distributed.algorithms._checkpoint.checkpoint_wrapper"


def freeze(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Freeze parameters matching ``options.freeze`` right before the optimizer is built, or
    before the model is wrapped when that comes first, or, in a script that builds no optimizer
    and updates one model by hand, above the loop that runs that update (:mod:`hand_step`);
    raises CannotAct where that place cannot be told or the script may turn requires_grad back
    on after it."""
    if not options.freeze:
        return None
    site: OptimizerSite | None = None
    hand = sole_hand_step(script)
    if hand is not None:  # no optimizer: the loop that updates a model by hand is the step
        placement = hand_placement(script, hand)
        guards = _grad_reader_guards(script, placement.anchor, [])
    else:
        try:
            site = script.optimizer
        except SeveralModels as several:
            return _freeze_each(script, options, several)
        placement, guards = _place_after_reference_pass(script, site, each=True)
    model = placement.model
    _refuse_foreign_wrapper(script, model)
    _refuse_unfreezing(script, placement.anchor)
    patterns = freeze_patterns(options.freeze)
    each = site is not None and site.each is not None  # one optimizer per model of a list
    if _frozen_already(script, model, patterns, each=each):
        return None
    notes += _renaming(script, placement)
    function = script.function_of(placement.anchor)
    name = script.fresh(("param_name",), function)
    param = script.fresh(("param",), function)
    frozen = script.fresh(("frozen",), function)
    # The names are known only when the script runs: a glob that matches nothing must stop it
    # there, not train the whole model as if the freeze had been applied.
    message = json.dumps(f"--freeze {', '.join(options.freeze)} matched no parameter of {model}")
    # a backward pass above (a reference pass) left a gradient on every parameter: a frozen
    # one must not keep it (an optimizer handed it would apply it; a clip over
    # model.parameters() would count it in the norm at every step)
    drop = _backward_before(script, placement.anchor) is not None
    owner, indent, code = model, "", ""
    if each:  # freeze each model of the list
        assert site is not None
        owner = script.fresh((site.model or "model", f"each_{site.model}"), function)
        indent, code = "    ", f"for {owner} in {model}:\n"
        message = json.dumps(
            f"--freeze {', '.join(options.freeze)} matched no parameter of a model in {model}"
        )
    code += "".join(
        indent + line
        for line in (
            f"{frozen} = 0\n",
            f"for {name}, {param} in {owner}.named_parameters():\n",
            f"    if any(fnmatch.fnmatchcase({name}, pattern) for pattern in {patterns}):\n",
            f"        {param}.requires_grad_(False)\n",
            *([f"        {param}.grad = None\n"] if drop else []),
            f"        {frozen} += 1\n",
            f"if not {frozen}:\n",
            f"    raise ValueError({message})\n",
        )
    )
    if site is not None and site.handed is not None:
        notes.append(
            (
                site.stmt,
                f"`{site.target}` is built by the caller of {site.handed}, out of view: "
                f"{model} is frozen here, before the optimizer is taken; a torch optimizer "
                "skips a parameter whose grad is None (no state, no weight decay), but a "
                "custom one that updates parameters without a gradient must be built over "
                f"the trainable parameters alone; and hand {site.handed} the model unwrapped "
                "(DDP or FSDP built before this freeze would not see it)",
            )
        )
    changes = {**guards, id(placement.anchor): edits.before(edits.statements(code))}
    module = edits.apply(script.module, changes)
    if not edits.imported(module, "fnmatch", "fnmatch"):
        module = edits.import_edits(module, ["import fnmatch"])
    return module


def _frozen_already(script: Script, model: str, patterns: str, each: bool) -> bool:
    """True when the script already runs this freeze of ``model`` (this codemod's, run
    before): a loop over its named parameters with these patterns, or, for a list of models
    (``each``), such a loop inside a loop over ``model``."""
    for loop in script.loops:
        if not isinstance(loop, cst.For) or patterns not in script.code(loop.body):
            continue
        if not each and script.code(loop.iter) == f"{model}.named_parameters()":
            return True
        if each and script.code(loop.iter) == model and isinstance(loop.target, cst.Name):
            inner = f"{loop.target.value}.named_parameters()"
            if any(
                isinstance(o, cst.For) and script.code(o.iter) == inner and script.inside(o, loop)
                for o in script.loops
            ):
                return True
    return False


def _freeze_each(
    script: Script, options: CodemodOptions, several: SeveralModels
) -> cst.Module | None:
    """Freeze the patterns in each model the optimizer of ``several`` trains, above it
    (:mod:`freezegen.codemod.freeze_each`); raises CannotAct where one freeze above the
    optimizer cannot do (a model wrapped before it, another optimizer, a model not always
    bound there) and where the one-model freeze would refuse."""
    site, owners = several.site, several.owners
    refuse_unsure_models(script, several)
    early: list[cst.CSTNode] = []
    guards = _grad_reader_guards(script, site.anchor, early)
    for owner in owners:
        placement = freeze_placement(
            script, replace(site, model=owner), owner, by_hand=bool(guards), after=tuple(early)
        )
        if placement.anchor is not site.anchor:
            raise CannotAct(
                placement.anchor,
                f"this optimizer trains {' and '.join(owners)}, and `{owner}` would have to be "
                f"frozen here, above line {script.line(site.anchor)} (before its wrap): the "
                "codemod freezes several models only where the optimizer is built",
            )
        _refuse_foreign_wrapper(script, owner)
    _refuse_unfreezing(script, site.anchor)
    if frozen_already(script, several, options.freeze):
        return None
    drop = _backward_before(script, site.anchor) is not None
    code = freeze_each_code(script, several, options.freeze, drop)
    changes = {**guards, id(site.anchor): edits.before(edits.statements(code))}
    module = edits.apply(script.module, changes)
    if not edits.imported(module, "fnmatch", "fnmatch"):
        module = edits.import_edits(module, ["import fnmatch"])
    return module


def lora(script: Script, options: CodemodOptions, notes: Notes) -> cst.Module | None:
    """Attach LoRA adapters with peft where the freeze would go (above the optimizer, or above
    the first wrap, on the unwrapped model): peft freezes the base and adds the adapters in
    place, and the model's name is bound to the PeftModel it returns. Refused where the freeze
    is (a foreign wrapper, every parameter's .grad read, requires_grad turned back on), where the
    script loads weights into the model below that point (their names would no longer match),
    and where adapters are already attached with another configuration."""
    if options.lora is None:
        return None
    site = script.optimizer
    if (early := _backward_before(script, site.anchor)) is not None:
        raise CannotAct(
            early,
            "this one-off backward call leaves a gradient on every weight, and peft freezes "
            "the base weights without dropping theirs; attach the adapters yourself, and set "
            "the base weights' .grad to None there",
        )
    placement, guards = _place_after_reference_pass(script, site)
    model = placement.model
    config = options.lora.config()
    for call in script.calls:
        if (script.names.qualified(call.func) or dotted(call.func) or "").endswith(
            "get_peft_model"
        ):
            if config in script.code(call):
                return None
            raise CannotAct(
                call,
                "the script already attaches adapters here, with another configuration; change "
                "it there instead of adding a second one",
            )
    _refuse_foreign_wrapper(script, model)
    _refuse_unfreezing(script, placement.anchor)
    for call in script.calls:
        func = call.func
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "load_state_dict"
            and dotted(func.value) == model
            and not runs_before(script, call, placement.anchor)
        ):
            raise CannotAct(
                call,
                f"weights are loaded into {model} here, after the place the adapters would be "
                "attached (above the optimizer): peft renames the adapted layers' weights "
                "(q_proj.weight becomes q_proj.base_layer.weight), so this load would no longer "
                "match; attach the adapters after it yourself",
            )
    if why := too_old(script.pins, "peft", "0.5", "LoraConfig(target_modules=[...])"):
        raise CannotAct(placement.anchor, why)
    notes += _renaming(script, placement)
    code = f"{model} = get_peft_model({model}, {config})\n"
    notes.append(
        (
            placement.anchor,
            f"{model} is now the PeftModel: the base is frozen and only the adapters train; a "
            "target name no module has stops the run at this line (peft raises)",
        )
    )
    module = edits.apply(
        script.module, {**guards, id(placement.anchor): edits.before(edits.statements(code))}
    )
    missing = [
        name
        for name in ("LoraConfig", "get_peft_model")
        if not edits.imported(module, name, f"peft.{name}")
    ]
    return edits.import_edits(module, [f"from peft import {', '.join(missing)}"] if missing else [])


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
    if sole_hand_step(script) is not None:  # no optimizer: the update by hand skips None grads
        return None
    site = script.optimizer
    if site.handed is not None:
        raise CannotAct(
            site.stmt,
            f"`{site.target}` is built by the caller of {site.handed}, out of view: hand it "
            "[p for p in model.parameters() if p.requires_grad] there",
        )
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


_MODULE_METHODS = (
    "to",
    "cuda",
    "parameters",
    "named_parameters",
    "train",
    "eval",
    "state_dict",
    "load_state_dict",
    "requires_grad_",
)
"""Methods a script calls on a torch module (and not on a config or a device)."""
_KNOWN_BUILDERS = ("torch.", "peft.", "transformers.", "accelerate.", "lightning.", "timm.")
"""Libraries whose calls that take a model and return one keep its parameters trainable by
backpropagation alone (torch.nn containers, peft's adapters, Hugging Face's and Lightning's
wrappers): freezing through them is what their own documentation does."""


def _refuse_foreign_wrapper(script: Script, model: str) -> None:
    """Raise CannotAct when ``model`` is built by a call from an unknown library that takes
    another model of the script (``maml = l2l.algorithms.MAML(model, lr=...)``): such a wrapper
    may differentiate the parameters itself (MAML's inner loop takes the gradient of every
    parameter and fails on frozen ones), which the codemod cannot see."""
    # a model is what the script treats as a module (moves it, reads its parameters); a
    # config object handed to a model class (GPT(gptconf)) or a device is not
    modules = {
        dotted(call.func.value)
        for call in script.calls
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in _MODULE_METHODS
    }
    built = {target for target, _ in script.names.constructed if target in modules}
    defined = {
        s.name.value for s in script.module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef))
    }
    for target, call in script.names.constructed:
        if target != model:
            continue
        callee = script.names.qualified(call.func) or dotted(call.func) or ""
        if (
            not _is_class(script, call)
            or callee.startswith(_KNOWN_BUILDERS)
            or callee.split(".", 1)[0] in defined
        ):
            continue
        inner = next(
            (
                a.value.value
                for a in call.args
                if isinstance(a.value, cst.Name)
                and a.value.value != model
                and a.value.value in built
            ),
            None,
        )
        if inner is not None:
            raise CannotAct(
                call,
                f"`{model}` is built by {script.code(call.func)}(...) around `{inner}`, a wrapper "
                "from outside this file that may take gradients of the parameters itself (a "
                "meta-learning wrapper does); freeze the parameters of the model it wraps "
                "yourself, if that wrapper allows frozen ones",
            )


def _place_after_reference_pass(
    script: Script, site: OptimizerSite, each: bool = False
) -> tuple[Placement, dict[int, edits.Replace]]:
    """Where the freeze goes (:func:`freeze_placement`) and the guards its parameter loops need
    (:func:`_grad_reader_guards`), after every read of all parameters' gradients that runs
    before the optimizer is built and the reference passes (:mod:`reference_pass`). Raises
    CannotAct at such a read when the freeze must go above it after all (above a
    torch.compile that comes before the DDP wrap). ``each``: as for :func:`_model`."""
    early: list[cst.CSTNode] = []
    guards = _grad_reader_guards(script, site.anchor, early)
    before = tuple(early) + tuple(b.stmt for b in script.reference_passes)
    placement = freeze_placement(
        script, site, _model(site, each=each), by_hand=bool(guards), after=before
    )
    for node in early:
        if not runs_before_calls(script, node, placement.anchor):
            raise CannotAct(
                node,
                "this reads `.grad` of every parameter, which a frozen parameter does not have "
                f"(it stays None), and it may run after line {script.line(placement.anchor)}, "
                "where the freeze must go (above the model's wrap); skip parameters whose grad "
                "is None here, or freeze in the script's own code",
            )
    return placement, guards


def _backward_before(script: Script, anchor: cst.BaseStatement) -> cst.Call | None:
    """The first backward call that runs before ``anchor`` (a reference pass), if any."""
    return next(
        (b.call for b in script.backward_calls if runs_before_calls(script, b.stmt, anchor)),
        None,
    )


def _renaming(script: Script, placement: Placement) -> Notes:
    """The note for a freeze placed below a torch.compile of the model (``renamed_by``)."""
    if placement.renamed_by is None:
        return []
    return [
        (
            placement.anchor,
            f"the freeze goes here, after the reference pass and before the wrap, where "
            f"{placement.model} may already be {script.code(placement.renamed_by.func)}(...)"
            f"'s (line {script.line(placement.renamed_by)}): on that path its parameter "
            "names carry that wrapper's prefix (torch.compile's `_orig_mod.`), so write "
            "patterns that match with it (a leading `*`)",
        )
    ]


def _grad_reader_guards(
    script: Script, anchor: cst.BaseStatement, early: list[cst.CSTNode]
) -> dict[int, edits.Replace]:
    """Edits that make every loop over a model's parameters which reads each one's ``.grad``
    without asking whether it has one skip the parameters that have none (a frozen parameter's
    grad stays None): ``if p.grad is None: continue`` first in the body of ``for p in
    model.parameters(): p.data.add_(p.grad, alpha=-lr)``, a hand-written SGD step, which then
    updates the trainable parameters alone, as an optimizer does.

    Raises CannotAct where skipping is not that simple: a comprehension over the parameters
    (``{n: p.grad.cpu() for n, p in ...}``: filtering it would change what it builds), or a
    loop whose body also does something that does not read the grad (skipping the parameter
    would skip that too).

    A read that provably runs before ``anchor`` (where the optimizer is built), such as a
    dump of a reference pass's gradients, needs no guard: it is appended to ``early``, and
    the freeze must go below it."""
    guards: dict[int, edits.Replace] = {}
    for node, names, body in _parameter_walks(script):
        code = script.code(body)
        for name in names:
            reads = f"{name}.grad" in code.replace(f"{name}.grad_", "")
            asks = (
                any(
                    f"{name}.{ask}" in code
                    for ask in ("grad is not None", "grad is None", "requires_grad")
                )
                or f"if {name}.grad" in code
            )
            if not reads or asks:
                continue
            if runs_before_calls(script, node, anchor):
                early.append(node)
                break
            if (
                isinstance(node, cst.For)
                and isinstance(body, cst.IndentedBlock)
                and not node.orelse
                and all(f"{name}.grad" in script.code(s) for s in body.body)
            ):
                guards[id(node)] = _skip_missing_grad(name)
                continue
            raise CannotAct(
                node,
                f"this reads `{name}.grad` of every parameter, which a frozen parameter "
                "does not have (it stays None): skip parameters whose grad is None here, "
                "or freeze in the script's own code",
            )
    return guards


def _skip_missing_grad(name: str) -> edits.Replace:
    """An edit putting ``if NAME.grad is None: continue`` first in a ``for`` loop's body."""
    guard = edits.statement(f"if {name}.grad is None:\n    continue\n")

    def edit(stmt: cst.BaseStatement) -> list[cst.BaseStatement]:
        assert isinstance(stmt, cst.For) and isinstance(stmt.body, cst.IndentedBlock)
        return [stmt.with_changes(body=stmt.body.with_changes(body=[guard, *stmt.body.body]))]

    return edit


def _parameter_walks(script: Script) -> list[tuple[cst.CSTNode, list[str], cst.CSTNode]]:
    """Every ``for`` loop and comprehension over ``x.parameters()`` / ``x.named_parameters()``:
    the node, the names it binds for a parameter, and what it runs for each."""
    found: list[tuple[cst.CSTNode, list[str], cst.CSTNode]] = []

    class _Walks(cst.CSTVisitor):
        def visit_For(self, node: cst.For) -> None:
            if _over_parameters(node.iter):
                found.append((node, target_names(node.target), node.body))

        def visit_CompFor(self, node: cst.CompFor) -> None:
            if _over_parameters(node.iter):
                comp: cst.CSTNode = node
                while isinstance(comp, cst.CompFor):  # up to the comprehension holding it
                    comp = script.parents[id(comp)]
                found.append((comp, target_names(node.target), comp))

    script.module.visit(_Walks())
    return found


def _over_parameters(it: cst.BaseExpression) -> bool:
    return (
        isinstance(it, cst.Call)
        and isinstance(it.func, cst.Attribute)
        and it.func.attr.value in ("parameters", "named_parameters")
    )


def _is_class(script: Script, call: cst.Call) -> bool:
    """True when ``call`` names a class, by Python's naming convention (``MAML(...)``)."""
    callee = script.names.qualified(call.func) or dotted(call.func) or ""
    last = callee.rpartition(".")[2]
    return last[:1].isupper()


def _refuse_unfreezing(script: Script, anchor: cst.BaseStatement) -> None:
    """Raise CannotAct when the script turns requires_grad back on where it may run after the
    freeze added above ``anchor``: below it, in a loop that also holds it, in another function
    (which may be called later), or anywhere the order cannot be told. The script's own
    freezing above the freeze (cv_example's base frozen, its classifier turned back on) runs
    first and cannot undo it."""
    for call in script.calls:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_":
            value = call.args[0].value if call.args else None
            if (value is None or script.code(value) != "False") and not runs_before(
                script, call, anchor
            ):
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
                and not runs_before(script, small, anchor)
            ):
                raise CannotAct(
                    small,
                    "the script sets requires_grad here, which may undo the freeze; "
                    "freeze in the script's own code instead",
                )


def _model(site: OptimizerSite, each: bool = False) -> str:
    """The name of the model ``site``'s optimizer trains where setup goes above it; for one
    optimizer per model of a list, the list when ``each`` (the caller goes through it), else
    raises CannotAct, as when the model cannot be told."""
    if site.each is not None:
        if each:
            return site.each
        raise CannotAct(
            site.call,
            f"one optimizer is built per model of `{site.each}`: the codemod sets this up on "
            "one model only",
        )
    model = site.model
    if model is None:
        raise CannotAct(site.call, "cannot tell which model this optimizer trains")
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
            if (
                isinstance(node.elt, cst.Name)
                and node.for_in.inner_for_in is None
                and _over_parameters(node.for_in.iter)
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
