"""Check one file: prefilter, CPython's parse (the gate), pre-pass, one libcst parse, every
selected rule in one pass, suppressions, fixes.

A file's failure (unreadable, not UTF-8, a syntax error, past a limit of :mod:`.gate`) comes back
as an FG500 finding, never as an exception: the run goes on with the next file. Every file is
decoded and parsed by CPython (cheap); only files that a selected rule could fire on pay for
libcst and the rules: the text prefilter (each rule's needles) and then the pre-pass over
CPython's tree (:mod:`.outline`, each rule's ``possible``) decide which.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from freezegen.check import gate
from freezegen.check.context import FileContext, Finding
from freezegen.check.outline import Outline
from freezegen.check.registry import all_rules
from freezegen.check.rule import CheckRule
from freezegen.diagnostics import Diagnostic
from freezegen.pysource import DECODE_HELP
from freezegen.rules import RuleOptions, source_lines, suppresses

PREFILTER = b"torch"
"""Files without this string are not given to libcst: no FG5xx rule can fire on them."""
FAILURE_CODE = "FG500"
FIXABLE = "(--fix applies it)"
UNSAFE_FIXABLE = "(--unsafe-fixes applies it)"


@dataclass
class FileResult:
    """The findings of one file and, with ``fix``, the fixed source when it changed."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    parsed: bool = False
    fixed_source: str | None = None
    fixes: int = 0
    """How many findings ``fix`` removed."""


def failure(path: str, message: str, help: str, line: int = 0, col: int = 0) -> Diagnostic:
    """An FG500 finding: the file could not be read or parsed."""
    return Diagnostic(FAILURE_CODE, message, path, line, col, fix=help)


def check_source(
    source: bytes | str,
    path: str = "<string>",
    options: RuleOptions | None = None,
    *,
    fix: bool = False,
    unsafe_fixes: bool = False,
) -> FileResult:
    """Check one file's contents; findings sorted by position, failures as FG500 findings.

    With ``fix``, ``fixed_source`` holds the rewritten file's text when a safe fix applied (it
    parsed again, and its findings are what ``diagnostics`` reports); with ``unsafe_fixes`` as
    well, the fixes marked unsafe apply too. The caller encodes the text as the file was
    (freezegen.pysource). Nothing is written here.
    """
    options = options or RuleOptions()
    data = source.encode("utf-8") if isinstance(source, str) else source
    result = FileResult(path)
    rules = _selected(data, options)
    try:
        if rules:
            parsed = gate.parse(source)
            gate.bound(parsed)
        else:
            gate.check_syntax(source)  # not Python is FG500 even where no rule would look
            return result
    except gate.Rejected as exc:
        result.diagnostics.append(failure(path, exc.message, exc.help, exc.line, exc.col))
        return result
    outline = Outline(parsed.tree)
    rules = [rule for rule in rules if rule.possible(outline)]
    if not rules:
        return result
    try:
        _run_rules(result, source, data, rules, options, fix, unsafe_fixes)
    except (RecursionError, MemoryError):  # the gate's limits leave room; this is a backstop
        message = "too complex for the libcst parser (nesting or size)"
        result.diagnostics = [failure(path, message, "please report this as a freezegen bug")]
        result.fixed_source, result.fixes = None, 0
    return result


def _run_rules(
    result: FileResult,
    source: bytes | str,
    data: bytes,
    rules: list[type[CheckRule]],
    options: RuleOptions,
    fix: bool,
    unsafe_fixes: bool,
) -> None:
    path = result.path
    try:
        # text is parsed as text: its encoding declaration is moot, the caller decoded it
        module = cst.parse_module(source)
        text = source if isinstance(source, str) else data.decode(module.encoding)
    except cst.ParserSyntaxError as exc:
        result.diagnostics.append(_syntax_error(data, path, exc))
        return
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        # libcst raises SyntaxError for a bad or missing encoding declaration
        line = data[: getattr(exc, "start", 0)].count(b"\n") + 1
        result.diagnostics.append(failure(path, f"cannot decode: {exc}", DECODE_HELP, line, 1))
        return
    result.parsed = True
    ctx = FileContext(path, module, text)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    wrapper.visit_batched([rule(ctx) for rule in rules])
    findings = _unsuppressed(ctx.findings, wrapper, path, text)
    result.diagnostics = sorted({d for _, d in findings}, key=Diagnostic.sort_key)
    applicable = [f for f, _ in findings if f.fix and (f.safe or unsafe_fixes)]
    if fix and applicable:
        _apply_fixes(result, module, applicable, options)


def _syntax_error(data: bytes, path: str, exc: cst.ParserSyntaxError) -> Diagnostic:
    """Python's own message and location when it agrees the file is broken (it says it better)."""
    message, line, col = exc.message, exc.editor_line, exc.editor_column + 1
    try:
        ast.parse(data, path)
    except SyntaxError as py:
        message, line, col = py.msg, py.lineno or line, py.offset or col
    except ValueError:  # null bytes
        pass
    help = "only files that parse as Python 3 are checked"
    return failure(path, f"syntax error: {message}", help, line, col)


def _selected(data: bytes, options: RuleOptions) -> list[type[CheckRule]]:
    if PREFILTER not in data:
        return []
    return [
        rule
        for rule in all_rules()
        if rule.code != FAILURE_CODE
        and options.enabled(rule.code, rule.default_enabled)
        and rule.wanted(data)
    ]


def _unsuppressed(
    findings: list[Finding], wrapper: MetadataWrapper, path: str, text: str
) -> list[tuple[Finding, Diagnostic]]:
    if not findings:
        return []
    positions = wrapper.resolve(PositionProvider)
    lines = source_lines(text)
    kept = []
    for f in findings:
        where = positions[f.node]
        line = lines[where.start.line - 1] if where.start.line <= len(lines) else ""
        if suppresses(line, f.code):
            continue
        d = Diagnostic(
            f.code,
            f.message,
            path,
            where.start.line,
            where.start.column + 1,
            severity=f.severity,
            fix=f.help if f.fix is None else f"{f.help} {FIXABLE if f.safe else UNSAFE_FIXABLE}",
            end_line=where.end.line,
            end_col=where.end.column + 1,
        )
        kept.append((f, d))
    return kept


class _Fixer(cst.CSTTransformer):
    def __init__(self, findings: list[Finding]) -> None:
        super().__init__()
        self.fixes: dict[int, list[Finding]] = {}
        for f in findings:
            self.fixes.setdefault(id(f.node), []).append(f)

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:
        for f in self.fixes.get(id(original_node), ()):
            assert f.fix is not None
            updated_node = f.fix(updated_node)
        return updated_node


def _apply_fixes(
    result: FileResult, module: cst.Module, fixable: list[Finding], options: RuleOptions
) -> None:
    new_code = module.visit(_Fixer(fixable)).code
    if new_code == module.code:
        return
    try:
        cst.parse_module(new_code)
        ast.parse(new_code, result.path)
    except (cst.ParserSyntaxError, SyntaxError, ValueError) as exc:  # a bug in a fix
        result.diagnostics.append(
            failure(
                result.path,
                f"a fix produced code that does not parse, so the file is unchanged: {exc}",
                "please report this as a freezegen bug",
            )
        )
        return
    again = check_source(new_code, result.path, options)
    result.diagnostics = again.diagnostics
    result.fixed_source = new_code
    result.fixes = len(fixable)
