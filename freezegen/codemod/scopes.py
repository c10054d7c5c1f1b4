"""Where a libcst tree binds a name, an attribute or a dict key: the scope lookups
:mod:`freezegen.codemod.knobs` needs to tell whether a setting is defined once.

Scopes are walked as Python sees them: a function's body without the functions, classes and
lambdas nested in it, whose bindings are their own.
"""

from __future__ import annotations

import libcst as cst

from freezegen.check.names import dotted


class _Walk(cst.CSTVisitor):
    """Collects nodes of one scope (nested functions, classes and lambdas are not entered)."""

    def __init__(self, scope: cst.CSTNode) -> None:
        super().__init__()
        self.scope = scope
        self.found: list[cst.CSTNode] = []

    def _enter(self, node: cst.CSTNode) -> bool:
        return node is self.scope

    visit_FunctionDef = visit_ClassDef = visit_Lambda = _enter  # type: ignore[assignment]


def bindings(scope: cst.CSTNode, name: str) -> list[cst.CSTNode]:
    """Statements and clauses of ``scope`` itself that bind or change ``name``, in order."""

    class _Find(_Walk):
        def visit_Assign(self, node: cst.Assign) -> None:
            if any(binds(t.target, name) for t in node.targets):
                self.found.append(node)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if binds(node.target, name):
                self.found.append(node)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if binds(node.target, name):
                self.found.append(node)

        def visit_For(self, node: cst.For) -> None:
            if binds(node.target, name):
                self.found.append(node)

        def visit_AsName(self, node: cst.AsName) -> None:
            if binds(node.name, name):
                self.found.append(node)

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            if binds(node.target, name):
                self.found.append(node)

        def visit_Del(self, node: cst.Del) -> None:
            if binds(node.target, name):
                self.found.append(node)

        def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
            bound = node.asname.name if node.asname else node.name
            if (dotted(bound) or "").split(".", 1)[0] == name:  # type: ignore[arg-type]
                self.found.append(node)

    finder = _Find(scope)
    if isinstance(scope, cst.FunctionDef):
        scope.body.visit(finder)
    else:
        scope.visit(finder)
    return finder.found


def binds(target: cst.BaseExpression, name: str) -> bool:
    """True when the assignment target ``target`` binds ``name`` (in a tuple too)."""
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(binds(e.value, name) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return binds(target.value, name)
    return False


def global_names(function: cst.FunctionDef) -> set[str]:
    """The names ``function`` declares ``global``."""
    found: set[str] = set()

    class _Find(_Walk):
        def visit_Global(self, node: cst.Global) -> None:
            found.update(n.name.value for n in node.names)

    function.body.visit(_Find(function))
    return found


def nonlocal_names(function: cst.FunctionDef) -> set[str]:
    """The names ``function`` declares ``nonlocal``."""
    found: set[str] = set()

    class _Find(_Walk):
        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            found.update(n.name.value for n in node.names)

    function.body.visit(_Find(function))
    return found


def parameter(function: cst.FunctionDef, name: str) -> cst.Param | None:
    """The parameter of ``function`` called ``name`` (not ``*args``/``**kwargs``), or None."""
    params = function.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    return next((p for p in every if p.name.value == name), None)


def functions(module: cst.Module) -> list[cst.FunctionDef]:
    """Every function and method of ``module``, nested ones included."""
    found: list[cst.FunctionDef] = []

    class _Find(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
            found.append(node)

    module.visit(_Find())
    return found


def names(node: cst.CSTNode, name: str) -> list[cst.Name]:
    """Every ``Name`` node spelling ``name`` inside ``node`` (attributes' and keywords' too)."""
    found: list[cst.Name] = []

    class _Find(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            if n.value == name:
                found.append(n)

    node.visit(_Find())
    return found


def attribute_bindings(module: cst.Module, attr: str) -> list[cst.CSTNode]:
    """Assignments anywhere to ``<anything>.attr`` (``self.steps = ...``, ``args.steps //= 2``)
    and ``setattr(obj, "attr", ...)`` calls."""
    found: list[cst.CSTNode] = []

    def hits(target: cst.BaseExpression) -> bool:
        if isinstance(target, cst.Attribute):
            return target.attr.value == attr
        if isinstance(target, (cst.Tuple, cst.List)):
            return any(hits(e.value) for e in target.elements)
        return False

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if any(hits(t.target) for t in node.targets):
                found.append(node)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if hits(node.target):
                found.append(node)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            if hits(node.target):
                found.append(node)

        def visit_Call(self, node: cst.Call) -> None:
            if dotted(node.func) == "setattr" and len(node.args) > 1:
                key = node.args[1].value
                if not isinstance(key, cst.SimpleString) or key.evaluated_value == attr:
                    found.append(node)  # this attribute, or one not known before run time

    module.visit(_Find())
    return found


def class_fields(module: cst.Module, attr: str) -> list[cst.AnnAssign | cst.Assign]:
    """Class-body statements giving ``attr`` a default (``steps: int = 1``)."""
    found: list[cst.AnnAssign | cst.Assign] = []

    class _Find(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            for stmt in node.body.body:
                if not isinstance(stmt, cst.SimpleStatementLine):
                    continue
                for small in stmt.body:
                    targets = (
                        [small.target]
                        if isinstance(small, cst.AnnAssign)
                        else [t.target for t in small.targets]
                        if isinstance(small, cst.Assign)
                        else []
                    )
                    if any(binds(t, attr) for t in targets):
                        found.append(small)  # type: ignore[arg-type]

    module.visit(_Find())
    return found


def dicts(module: cst.Module) -> list[cst.Dict]:
    """Every dict literal of ``module``."""
    found: list[cst.Dict] = []

    class _Find(cst.CSTVisitor):
        def visit_Dict(self, node: cst.Dict) -> None:
            found.append(node)

    module.visit(_Find())
    return found


def subscript_targets(module: cst.Module) -> list[cst.Subscript]:
    """Every ``x[key]`` that ``module`` assigns to (``=``, ``+=``, annotated)."""
    found: list[cst.Subscript] = []

    def add(target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Subscript):
            found.append(target)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for e in target.elements:
                add(e.value)

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                add(t.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            add(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            add(node.target)

    module.visit(_Find())
    return found
