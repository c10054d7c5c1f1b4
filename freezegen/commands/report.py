"""``freezegen report RUN``: a run's metrics.jsonl drawn as figures and one HTML page.

RUN is the run's checkpoint folder (which holds metrics.jsonl) or the file itself. The
figures (loss, throughput, memory) and report.html go to ``--out`` (default RUN/report);
every file is written atomically. The reading is freezegen.runlog's, the drawing
freezegen.report.run_figures', the page freezegen.report.run_page's: this module connects
them and turns their errors into a user's messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors

__all__ = ["Options", "run"]

PAGE = "report.html"


@dataclass(frozen=True)
class Options:
    """``run``: a run folder or its metrics.jsonl. ``out``: the folder for the report
    (default: ``report`` beside metrics.jsonl). ``format``: the figures' files, svg or png."""

    run: Path
    out: Path | None = None
    format: str = "svg"


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Write the figures and the page; exit status 0, or 2 for a usage error (an unknown
    format, a missing run or metrics file, a line that breaks the schema (located), a run with
    no step recorded, matplotlib missing, an output folder that cannot be written)."""
    from freezegen._io import WriteRefused, check_target, write_file
    from freezegen.report.figures import FORMATS, PlotError
    from freezegen.report.run_figures import draw_run
    from freezegen.report.run_page import render_page
    from freezegen.report.run_summary import summary_text
    from freezegen.runlog import FILE_NAME, MetricsError, read_metrics

    if options.format not in FORMATS:
        raise UsageError(f"unknown --format {options.format!r}; choose {' or '.join(FORMATS)}")
    given = options.run
    if not given.exists() and not given.is_symlink():
        raise UsageError(f"no such run folder or file: {given}")
    metrics = given / FILE_NAME if given.is_dir() else given
    if given.is_dir() and not metrics.exists():
        raise UsageError(
            f"{given} holds no {FILE_NAME}: give the run's checkpoint folder (checkpoint.dir "
            "of its spec), where the training script writes it"
        )
    try:
        log = read_metrics(metrics)
    except MetricsError as exc:
        raise UsageError(str(exc)) from None
    if log.empty:
        raise UsageError(
            f"{metrics}: no step recorded yet (no train, eval or memory record); run the "
            "training script, then report"
        )
    out = options.out if options.out is not None else metrics.parent / "report"
    page = out / PAGE
    try:
        check_target(page, [metrics])
        figures = draw_run(log, options.format)
    except (WriteRefused, PlotError) as exc:
        raise UsageError(str(exc)) from None

    title = f"freezegen report: {metrics.parent.name or metrics.parent.resolve().name}"
    result = CommandResult()
    targets = [(out / f"{name}.{options.format}", data) for name, data in figures.files.items()]
    targets.append((page, render_page(log, figures, title)))
    for path, content in targets:
        try:
            write_file(path, content, [metrics])
        except WriteRefused as exc:
            raise UsageError(str(exc)) from None
        result.written.append(path)
    result.out(summary_text(log, title))
    for path in result.written:
        result.err(f"wrote {path}")
    return result
