"""Where a script's own setting gets its value, and whether the codemod may set it there.

A script that already accumulates gradients, or already hands ``mixed_precision`` to
Accelerate, has a knob for it: ``args.gradient_accumulation_steps`` read from an argparse
option, a module constant, a function's keyword default, a class attribute, a dict config
entry. Composing with the script means doing what a user would do by hand: set that knob's
one literal to the wanted value. That is only right when the literal is the value the knob
holds when the script reaches the use: defined once in this file, never reassigned or mutated
afterwards, not computed, not filled in from outside (a YAML config, a caller, ``exec``). Any
doubt is a located refusal, never a guess.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst

from freezegen.check.names import dotted
from freezegen.check.rules._calls import add_keyword, keyword
from freezegen.codemod import scopes
from freezegen.codemod.script import CannotAct, Script, YoursToSet

_IDENTITY_CASTS = ("int", "str")
"""Calls that leave an already well-typed value as it is: ``int(args.steps)``."""
_MUTATORS = ("update", "setdefault", "pop", "clear", "__setitem__")
"""Methods that change a dict config in place."""


class Unreachable(CannotAct):
    """No value a user can give makes the knob hold the wanted one (an option whose
    ``choices`` lack it, a flag that stores a constant): composing is impossible, not merely
    out of the codemod's reach."""


@dataclass(frozen=True, eq=False)
class Knob:
    """The one place a setting's value is written, and the edit that sets it."""

    where: cst.CSTNode
    """The literal to change, or the ``add_argument(...)`` call that lacks a default."""
    what: str
    """Where that is, for a person: ``its argparse default``, ``a module constant``."""
    option: str | None = None
    """The command-line flag that overrides it (argparse), to say how to change it later."""
    swaps: dict[int, cst.BaseExpression] = field(default_factory=dict)
    """Expression replacements (by ``id``) that set it; empty when it already holds the value."""

    def note(self, script: Script, setting: str, wanted: str) -> str:
        """A sentence saying what was set where: ``set the script's own ... at line 12 ...``."""
        how = f"; pass {self.option} to change it" if self.option else ""
        return (
            f"set the script's own {setting} to {wanted} at line {script.line(self.where)} "
            f"({self.what}{how})"
        )


def set_knob(script: Script, expr: cst.BaseExpression, wanted: str) -> Knob:
    """The knob ``expr`` reads, with the swaps that make it hold ``wanted`` (a Python literal:
    ``4``, ``"bf16"``). Raises CannotAct, at the definition when there is one, when setting
    that literal would not provably make ``expr`` hold ``wanted``."""
    return _Resolver(script, ast.literal_eval(wanted), wanted).resolve(expr, expr)


class _Resolver:
    def __init__(self, script: Script, value: object, source: str) -> None:
        self.script = script
        self.value = value
        self.source = source
        self.seen: set[int] = set()

    def resolve(self, expr: cst.BaseExpression, at: cst.CSTNode) -> Knob:
        script = self.script
        if id(expr) in self.seen:
            raise CannotAct(expr, f"`{script.code(expr)}` is defined in terms of itself")
        self.seen.add(id(expr))
        if isinstance(expr, cst.Call) and _is_identity_cast(expr):
            return self.resolve(expr.args[0].value, at)
        literal = _literal(expr)
        if literal is not _NOT_LITERAL:
            return self._literal(expr, literal, "its literal")
        if isinstance(expr, cst.Name):
            return self._name(expr.value, at)
        if isinstance(expr, cst.Attribute):
            return self._attribute(expr)
        if isinstance(expr, cst.Subscript):
            return self._entry(expr)
        raise CannotAct(
            expr, f"`{script.code(expr)}` is computed at line {script.line(expr)}, not a literal"
        )

    def _literal(self, node: cst.BaseExpression, literal: object, what: str) -> Knob:
        if literal == self.value and type(literal) is type(self.value):
            return Knob(node, what)
        return Knob(node, what, swaps={id(node): cst.parse_expression(self.source)})

    # --- a name: a local, a parameter's default, a module constant -----------------------

    def _name(self, name: str, at: cst.CSTNode) -> Knob:
        script = self.script
        rebinding = next(
            (f for f in scopes.functions(script.module) if name in scopes.nonlocal_names(f)), None
        )
        if rebinding is not None:
            raise CannotAct(
                rebinding,
                f"`{name}` is rebound through `nonlocal` in {rebinding.name.value}() (line "
                f"{script.line(rebinding)})",
            )
        function = script.function_of(at)
        while function is not None and name not in scopes.global_names(function):
            bindings = scopes.bindings(function, name)
            if bindings:
                return self._assigned(name, bindings, "assigned there")
            parameter = scopes.parameter(function, name)
            if parameter is not None:
                return self._parameter(function, parameter)
            function = script.function_of(function)  # a closure reads its enclosing function's
        bindings = scopes.bindings(script.module, name) + [
            b
            for f in scopes.functions(script.module)
            if name in scopes.global_names(f)
            for b in scopes.bindings(f, name)
        ]
        if not bindings:
            raise CannotAct(at, f"`{name}` is not defined in this file")
        if len(bindings) > 1:
            return self._assigned(name, bindings, "a module constant")  # raises, naming both
        outside = next((c for c in script.calls if dotted(c.func) in ("exec", "globals")), None)
        if outside is not None:
            raise CannotAct(
                outside,
                f"`{name}` is a module constant, but {script.code(outside.func)}(...) at line "
                f"{script.line(outside)} may overwrite it from outside the file",
            )
        return self._assigned(name, bindings, "a module constant")

    def _assigned(self, name: str, bindings: list[cst.CSTNode], what: str) -> Knob:
        script = self.script
        first = bindings[0]
        if len(bindings) > 1:
            lines = script.lines(bindings[1:])
            raise CannotAct(
                first,
                f"`{name}` is set at line {script.line(first)} and set again or changed at "
                f"line {lines}",
            )
        if not (
            isinstance(first, (cst.Assign, cst.AnnAssign))
            and first.value is not None
            and (not isinstance(first, cst.Assign) or len(first.targets) == 1)
        ):
            raise CannotAct(
                first, f"`{name}` is bound at line {script.line(first)} by no plain assignment"
            )
        knob = self.resolve(first.value, first)
        if knob.what == "its literal":
            return Knob(knob.where, what, knob.option, knob.swaps)
        return knob

    def _parameter(self, function: cst.FunctionDef, param: cst.Param) -> Knob:
        script = self.script
        name = param.name.value
        fname = function.name.value
        default = param.default
        if default is None or _literal(default) is _NOT_LITERAL:
            raise CannotAct(
                param,
                f"`{name}` is a parameter of {fname}() (line {script.line(param)}): its caller "
                "decides its value",
            )
        positional = [*function.params.posonly_params, *function.params.params]
        index = next((i for i, p in enumerate(positional) if p is param), None)
        uses = scopes.names(script.module, fname)
        calls = [c for c in script.calls if isinstance(c.func, cst.Name) and c.func.value == fname]
        if len(calls) != len(uses) - 1 or not calls:
            raise CannotAct(
                param,
                f"`{name}` is a parameter of {fname}() (line {script.line(param)}), which is "
                "used in ways the codemod cannot follow; its callers may pass another value",
            )
        for call in calls:
            given = keyword(call, name) is not None or any(a.star for a in call.args)
            if index is not None:
                given |= len([a for a in call.args if a.keyword is None]) > index
            if given:
                raise CannotAct(
                    call,
                    f"`{name}` has a default in {fname}() (line {script.line(param)}), but the "
                    f"call at line {script.line(call)} may pass its own",
                )
        literal = _literal(default)
        return self._literal(default, literal, f"the default of {fname}()'s parameter")

    # --- an attribute: an argparse option, a class attribute, an assigned attribute ------

    def _attribute(self, expr: cst.Attribute) -> Knob:
        script = self.script
        attr = expr.attr.value
        assigned = scopes.attribute_bindings(script.module, attr)
        options = [c for c in script.calls if _is_add_argument(c) and _dest(c) == attr]
        fields = scopes.class_fields(script.module, attr)
        places = [*assigned, *options, *fields]
        if not places:
            raise CannotAct(
                expr,
                f"`{script.code(expr)}` is not defined in this file (a config file or a caller "
                "fills it in)",
            )
        if len(places) > 1:
            lines = script.lines(places)
            raise CannotAct(places[0], f"`{attr}` is defined or changed at lines {lines}")
        for call in script.calls:
            if (dotted(call.func) or "").endswith(".set_defaults") and (
                keyword(call, attr) is not None or any(a.star for a in call.args)
            ):
                raise CannotAct(
                    call,
                    f"set_defaults(...) at line {script.line(call)} may replace the default of "
                    f"`{attr}`",
                )
        if assigned:
            return self._assigned(attr, assigned, "assigned there")
        if options:
            self._refuse_unless_parsed(expr)
            return self._option(options[0], attr)
        return self._field(fields[0], attr)

    _PARSERS = ("parse_args", "parse_known_args")

    def _refuse_unless_parsed(self, expr: cst.Attribute) -> None:
        """Raise CannotAct unless ``args`` in ``args.x`` is what a ``parse_args()`` call returns
        (or a parameter a caller hands it in): a config object read from a file may carry an
        attribute of the same name as an option, and its value is not the option's default."""
        script = self.script
        receiver = expr.value
        if not isinstance(receiver, cst.Name):
            return
        name = receiver.value
        function = script.function_of(expr)
        while function is not None and name not in scopes.global_names(function):
            found = scopes.bindings(function, name)
            if found:
                break
            if scopes.parameter(function, name) is not None:
                return  # handed in by a caller, as no-trainer scripts pass args around
            function = script.function_of(function)
        else:
            found = scopes.bindings(script.module, name)
        if found and all(
            isinstance(b, (cst.Assign, cst.AnnAssign))
            and isinstance(b.value, cst.Call)
            and (dotted(b.value.func) or "").rpartition(".")[2] in self._PARSERS
            for b in found
        ):
            return
        where = f" (line {script.line(found[0])})" if found else ""
        raise CannotAct(
            found[0] if found else expr,
            f"`{script.code(expr)}` names an option, but `{name}`{where} is not what "
            "parse_args() returns",
        )

    def _option(self, call: cst.Call, dest: str) -> Knob:
        script = self.script
        line = script.line(call)
        flags = _flags(call)
        if not flags:
            raise CannotAct(call, f"the option for `{dest}` (line {line}) is named at run time")
        flag = flags[0]
        for key, allowed in (("action", ("store",)), ("nargs", ()), ("const", ())):
            arg = keyword(call, key)
            if arg is not None and _literal(arg.value) not in allowed:
                raise Unreachable(
                    arg, f"the option {flag} (line {line}) has {key}={script.code(arg.value)}"
                )
        required = keyword(call, "required")
        if required is not None and script.code(required.value) != "False":
            raise CannotAct(
                required,
                f"the option {flag} (line {line}) is required, so it has no default to set: "
                f"pass {flag} {self.value}",
            )
        choices = keyword(call, "choices")
        if choices is not None:
            allowed = _literal(choices.value)
            if not isinstance(allowed, (list, tuple, set)) or self.value not in allowed:
                raise Unreachable(
                    choices,
                    f"the option {flag} (line {line}) allows choices={script.code(choices.value)}"
                    f", which does not hold {self.source}",
                )
        if any(a.star for a in call.args):
            raise CannotAct(call, f"the option {flag} (line {line}) takes `**` arguments")
        default = keyword(call, "default")
        what = "its argparse default"
        if default is None:
            new = add_keyword(call, "default", self.source)
            return Knob(call, what, flag, {id(call): new})
        literal = _literal(default.value)
        if literal is _NOT_LITERAL:
            raise CannotAct(
                default,
                f"the default of {flag} (line {line}) is computed: `{script.code(default.value)}`",
            )
        knob = self._literal(default.value, literal, what)
        return Knob(knob.where, what, flag, knob.swaps)

    def _field(self, stmt: cst.AnnAssign | cst.Assign, attr: str) -> Knob:
        script = self.script
        cls = next(a for a in script.ancestors(stmt) if isinstance(a, cst.ClassDef))
        name = cls.name.value
        for call in script.calls:
            if dotted(call.func) == name and (
                keyword(call, attr) is not None
                or any(a.star or a.keyword is None for a in call.args)
            ):
                raise CannotAct(
                    call,
                    f"{name}(...) at line {script.line(call)} may set `{attr}`, whose default is "
                    f"at line {script.line(stmt)}",
                )
        if stmt.value is None or _literal(stmt.value) is _NOT_LITERAL:
            raise CannotAct(
                stmt, f"`{name}.{attr}` (line {script.line(stmt)}) has no literal default"
            )
        return self._literal(stmt.value, _literal(stmt.value), f"a default of class {name}")

    # --- a dict config entry -------------------------------------------------------------

    def _entry(self, expr: cst.Subscript) -> Knob:
        script = self.script
        key = _string_key(expr)
        if key is None:
            raise CannotAct(expr, f"`{script.code(expr)}` is not read with a literal key")
        config = dotted(expr.value)
        entries = [
            e
            for d in scopes.dicts(script.module)
            for e in d.elements
            if isinstance(e, cst.DictElement) and _literal(e.key) == key
        ]
        writes = [t for t in scopes.subscript_targets(script.module) if _string_key(t) == key]
        mutators = [
            c
            for c in script.calls
            if isinstance(c.func, cst.Attribute)
            and c.func.attr.value in _MUTATORS
            and dotted(c.func.value) == config
        ]
        places = [*entries, *writes, *mutators]
        if len(entries) != 1 or len(places) != 1 or not _assigned_to(script, entries[0], config):
            if not places:
                raise CannotAct(expr, f"`{script.code(expr)}` is not defined in this file")
            lines = script.lines(places)
            raise CannotAct(places[0], f"the entry {key!r} is defined or changed at lines {lines}")
        value = entries[0].value
        literal = _literal(value)
        if literal is _NOT_LITERAL:
            raise CannotAct(value, f"the entry {key!r} (line {script.line(value)}) is computed")
        return self._literal(value, literal, "an entry of the script's config dict")


_NOT_LITERAL = object()


def _literal(expr: cst.BaseExpression) -> object:
    """The value of a literal expression (numbers, strings, None, lists of them), else a marker."""
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) and not (
        isinstance(expr, cst.Name) and expr.value in ("None", "True", "False")
    ):
        return _NOT_LITERAL
    try:
        return ast.literal_eval(cst.Module([]).code_for_node(expr).strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _is_identity_cast(call: cst.Call) -> bool:
    return (
        dotted(call.func) in _IDENTITY_CASTS
        and len(call.args) == 1
        and call.args[0].keyword is None
        and not call.args[0].star
    )


def _is_add_argument(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_argument"


def _flags(call: cst.Call) -> list[str]:
    return [
        str(a.value.evaluated_value)
        for a in call.args
        if a.keyword is None and isinstance(a.value, cst.SimpleString)
    ]


def _dest(call: cst.Call) -> str | None:
    """The attribute an ``add_argument`` call fills, as argparse derives it."""
    dest = keyword(call, "dest")
    if dest is not None:
        return dest.value.evaluated_value if isinstance(dest.value, cst.SimpleString) else None  # type: ignore[return-value]
    flags = _flags(call)
    long = next((f for f in flags if f.startswith("--")), None)
    chosen = long or (flags[0] if flags else None)
    return chosen.lstrip("-").replace("-", "_") if chosen else None


def _string_key(expr: cst.Subscript) -> str | None:
    if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
        return None
    key = _literal(expr.slice[0].slice.value)
    return key if isinstance(key, str) else None


def _assigned_to(script: Script, entry: cst.DictElement, name: str | None) -> bool:
    """True when the dict literal holding ``entry`` is assigned to ``name`` alone: the dict
    the script reads, not some other dict with the same key (a logging payload)."""
    literal = script.parents.get(id(entry))
    assign = script.parents.get(id(literal))
    return (
        isinstance(assign, cst.Assign)
        and assign.value is literal
        and len(assign.targets) == 1
        and dotted(assign.targets[0].target) == name
    )


def compose(
    script: Script,
    reads: list[cst.BaseExpression],
    wanted: str,
    setting: str,
    refusal: CannotAct,
    notes: list[tuple[cst.CSTNode | None, str]],
) -> dict[int, cst.BaseExpression]:
    """The swaps that set the one knob every expression in ``reads`` reads (the step guard's
    window and the loss's divisor alike) to ``wanted``, noting what was set where.

    Raises ``refusal`` with the reason appended when the reads do not share one knob or no
    value can make it hold ``wanted``; :class:`YoursToSet` (saying what to set and why the
    codemod cannot) when the knob takes its value outside the file's reach (see
    :func:`set_knob`); returns no swaps when it already holds ``wanted``.
    """
    try:
        knobs = [set_knob(script, read, wanted) for read in reads]
    except Unreachable as exc:
        raise CannotAct(
            refusal.node, f"{refusal.message}; the codemod cannot set it for you: {exc.message}"
        ) from None
    except CannotAct as exc:
        raise yours_to_set(refusal, setting, wanted, exc.message) from None
    first = knobs[0]
    other = next((k for k in knobs if k.where is not first.where), None)
    if other is not None:
        raise CannotAct(
            refusal.node,
            f"{refusal.message}; the codemod cannot set it for you: it reads values defined "
            f"apart (line {script.line(first.where)} and line {script.line(other.where)})",
        )
    if first.swaps:
        note = (first.where, first.note(script, setting, wanted))
        if all(n[0] is not note[0] or n[1] != note[1] for n in notes):
            notes.append(note)
    return first.swaps


def yours_to_set(refusal: CannotAct, setting: str, wanted: str, why: str) -> YoursToSet:
    """The script's own mechanism, kept: ``refusal`` says what it is and where (``the script
    already accumulates gradients by hand (...)``), ``why`` why the codemod cannot set
    ``setting`` to ``wanted`` in the file."""
    what = refusal.message.partition("; ")[0]
    return YoursToSet(
        refusal.node,
        f"{what}; set {setting} to {wanted} yourself (the codemod cannot: {why})",
        CannotAct(refusal.node, f"{refusal.message}; the codemod cannot set it for you: {why}"),
    )
