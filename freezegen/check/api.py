"""Check Python training scripts: the library surface that ``freezegen check`` prints.

Paths go in, a :class:`CheckReport` comes out; a file that cannot be read or parsed is an FG500
finding in it, never an exception. Options come from the command line layered over
``[tool.freezegen]`` in the nearest pyproject.toml, exactly as for ``freezegen lint``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from freezegen._files import expand_paths as _expand
from freezegen._io import ReadRefused, TooLarge, WriteRefused, write_file
from freezegen.check.engine import FileResult, check_source, failure
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
    jobs: int = 1,
) -> CheckReport:
    """Check files (folders are searched for ``*.py``); with ``fix``, write safe fixes back.

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
        work.append((str(path), options, fix))
    if jobs > 1 and len(work) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_check_file, work, chunksize=max(1, len(work) // (jobs * 8))))
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
    path: str | Path, options: RuleOptions | None = None, *, fix: bool = False
) -> FileResult:
    """Check one file on disk; with ``fix``, write the fixed source back atomically, in the
    file's own encoding. A file that cannot be read, or fixes that cannot be written, come back
    as FG500 findings."""
    return _check_file((str(path), options or RuleOptions(), fix))


def _check_file(item: tuple[str, RuleOptions, bool]) -> FileResult:
    path, options, fix = item
    try:
        data = read_source(path)
    except ReadRefused as exc:
        help = "check the path and its permissions"
        if isinstance(exc, TooLarge):
            help = "a training script is far smaller; check the path"
        return FileResult(path, [failure(path, f"cannot read: {exc.reason}", help)])
    result = check_source(data, path, options, fix=fix)
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


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield Python files: those given, and ``*.py`` files under given folders."""
    return _expand(paths, lambda path: path.suffix == ".py")
