"""Check Python training scripts: the library surface that ``freezegen check`` prints.

Paths go in, a :class:`CheckReport` comes out; a file that cannot be read or parsed is an FG500
finding in it, never an exception. Options come from the command line layered over
``[tool.freezegen]`` in the nearest pyproject.toml, exactly as for ``freezegen lint``.

With ``jobs`` > 1 each file is checked in a worker process, and a worker that dies on a file (a
crash in libcst's native parser) is an FG500 finding for that file while the others go on. With
``jobs`` 1 everything runs in this process: the limits of :mod:`freezegen.check.gate`, which
keep every input known to crash libcst away from it, are the guarantee there.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from freezegen._files import expand_paths as _expand
from freezegen._io import ReadRefused, TooLarge, WriteRefused, write_file
from freezegen.check.engine import FileResult, check_source, failure
from freezegen.check.pool import map_isolated
from freezegen.check.registry import REGISTRY
from freezegen.diagnostics import Diagnostic, Severity
from freezegen.pysource import CannotEncode, encode_source, read_source, source_encoding
from freezegen.rules import Overrides, RuleOptions


@dataclass
class CheckReport:
    """Every finding of one ``check`` run, how many files were looked at and fixed."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    parsed: int = 0
    fixed_paths: list[str] = field(default_factory=list)
    """The files ``fix`` rewrote."""
    fixes: int = 0
    strict: bool = False

    @property
    def failed(self) -> bool:
        """True when an error (or, with strict, a warning) was found."""
        return any(self.strict or d.severity is Severity.ERROR for d in self.diagnostics)


def check_paths(
    paths: Iterable[str | Path],
    overrides: Overrides | None = None,
    *,
    fix: bool = False,
    unsafe_fixes: bool = False,
    jobs: int = 1,
) -> CheckReport:
    """Check files (folders are searched for ``*.py``); with ``fix``, write safe fixes back,
    and with ``unsafe_fixes`` as well the fixes marked unsafe.

    Raises ConfigError for malformed selectors or pyproject.toml, FileNotFoundError for a path
    that does not exist.
    """
    overrides = overrides or Overrides()
    REGISTRY.check_overrides(overrides)
    report = CheckReport(strict=bool(overrides.strict))
    work = []
    for path in expand_paths(paths):
        options = REGISTRY.options_for(path, overrides)
        report.strict = report.strict or options.strict
        work.append((str(path), options, fix, unsafe_fixes))
    if jobs > 1 and len(work) > 1:
        results = map_isolated(_check_file, work, jobs, _crashed)
    else:
        results = [_check_file(item) for item in work]
    for result in results:
        report.files += 1
        report.parsed += result.parsed
        report.diagnostics.extend(result.diagnostics)
        if result.fixes:
            report.fixed_paths.append(result.path)
            report.fixes += result.fixes
    return report


def check_file(
    path: str | Path,
    options: RuleOptions | None = None,
    *,
    fix: bool = False,
    unsafe_fixes: bool = False,
) -> FileResult:
    """Check one file on disk; with ``fix``, write the fixed source back atomically, in the
    file's own encoding (``unsafe_fixes``: the unsafe fixes too). A file that cannot be read, or
    fixes that cannot be written, come back as FG500 findings."""
    return _check_file((str(path), options or RuleOptions(), fix, unsafe_fixes))


_Work = tuple[str, RuleOptions, bool, bool]
"""What a worker checks: the path, its options, ``fix`` and ``unsafe_fixes``."""


def _check_file(item: _Work) -> FileResult:
    path, options, fix, unsafe_fixes = item
    try:
        data = read_source(path)
    except ReadRefused as exc:
        help = "check the path and its permissions"
        if isinstance(exc, TooLarge):
            help = "a training script is far smaller; check the path"
        return FileResult(path, [failure(path, f"cannot read: {exc.reason}", help)])
    result = check_source(data, path, options, fix=fix, unsafe_fixes=unsafe_fixes)
    if result.fixed_source is not None:
        try:
            write_file(path, encode_source(result.fixed_source, source_encoding(data)))
        except (WriteRefused, CannotEncode, SyntaxError) as exc:
            # the file is as it was, so its findings are those before the fixes
            result = check_source(data, path, options)
            reason = exc.reason if isinstance(exc, WriteRefused) else str(exc)
            help = "make the file and its folder writable, or run without --fix"
            refusal = failure(path, f"cannot write the fixes: {reason}", help)
            result.diagnostics = sorted([refusal, *result.diagnostics], key=Diagnostic.sort_key)
            return result
        result.fixed_source = None  # written; no need to send it back to the parent
    return result


def _crashed(item: _Work, exitcode: int | None) -> FileResult:
    """The FG500 finding for a file whose worker process died while checking it."""
    path = item[0]
    if exitcode is not None and exitcode < 0:
        known = -exitcode in signal.valid_signals()
        how = f"was killed by {signal.Signals(-exitcode).name if known else -exitcode}"
    else:
        how = f"exited with status {exitcode}"
    message = f"the process checking this file {how}; the file was left unchanged"
    help = "leave the file out of the paths given, and please report it as a freezegen bug"
    return FileResult(path, [failure(path, message, help)])


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield Python files: those given, and ``*.py`` files under given folders."""
    return _expand(paths, lambda path: path.suffix == ".py")
