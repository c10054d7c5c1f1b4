"""A run's summary in words: the rows ``freezegen report`` prints and puts on its page.

Steps, loss, speed, the best validation loss and its step, thaw events, and the final memory
table (measured against predicted). A value the run could not measure (the allocator's figures
on the CPU) says so instead of reading as zero.
"""

from __future__ import annotations

import statistics

from freezegen.report.run_figures import memory_unit, not_measured
from freezegen.runlog import SCHEMA, RunLog

__all__ = ["memory_rows", "summary_rows", "summary_text", "thaw_rows"]

Rows = list[tuple[str, str]]


def summary_rows(log: RunLog) -> Rows:
    """(label, value) rows describing the run as a whole."""
    rows: Rows = []
    latest = log.runs[-1] if log.runs else None
    if latest is not None:
        rows.append(("steps", f"{log.last_step:,} of {latest.max_steps:,}"))
        rows.append(("device", f"{latest.device} x {latest.world_size}"))
        share = latest.trainable_parameters / max(latest.total_parameters, 1)
        rows.append(
            (
                "trainable parameters",
                f"{latest.trainable_parameters:,} of {latest.total_parameters:,} ({share:.1%})",
            )
        )
    else:
        rows.append(("steps", f"{log.last_step:,} (no run record: the run's start is not logged)"))
    if log.resumes:
        rows.append(("resumed at step", ", ".join(f"{r.step:,}" for r in log.resumes)))
    if log.train:
        start, end = log.train[0], log.train[-1]
        change = f"{start.loss:.4g} at step {start.step:,} → {end.loss:.4g} at step {end.step:,}"
        rows.append(("training loss", change))
        speeds = [r.tokens_per_s for r in log.train]
        rows.append(("tokens/s (median)", f"{statistics.median(speeds):,.0f}"))
    best = log.best_eval
    if best is not None:
        rows.append(
            (
                "best validation loss",
                f"{best.val_loss:.4g} (perplexity {best.val_ppl:.4g}) at step {best.step:,}",
            )
        )
        last = log.evals[-1]
        if last is not best:
            rows.append(("last validation loss", f"{last.val_loss:.4g} at step {last.step:,}"))
    elif not log.evals:
        rows.append(("validation", "no evaluation recorded"))
    rows.append(("thaw events", str(len(log.thaws)) if log.thaws else "none"))
    newer = max((r.schema for r in log.runs), default=SCHEMA)
    if newer > SCHEMA:
        note = f"written with metrics schema {newer}; this freezegen reads schema {SCHEMA}"
        rows.append(("schema", f"{note} (what it does not know is left out)"))
    if log.incomplete_tail:
        rows.append(("note", "the last line is incomplete (the run may be writing it); left out"))
    return rows


def thaw_rows(log: RunLog) -> list[tuple[str, str, str]]:
    """(step, schedule entry, tensors thawed) for each thaw event."""
    return [(f"{t.step:,}", str(t.entry), f"{t.tensors:,}") for t in log.thaws]


def memory_rows(log: RunLog) -> Rows:
    """The final memory table: the last memory record (end of run or probe), else the last
    training step's figures beside the run's prediction."""
    missing = not_measured(log)
    if log.memory:
        final = log.memory[-1]
        allocated, predicted = final.max_allocated_bytes, final.predicted_peak_bytes
        reserved, fragmentation = final.reserved_bytes, final.fragmentation_bytes
        counts = {
            "allocation retries": final.alloc_retries,
            "cudaMalloc calls": final.cuda_malloc_count,
        }
        source = f"end of run, step {final.step:,}"
    else:
        train = log.train[-1] if log.train else None
        allocated = train.max_allocated_bytes if train else None
        reserved = train.reserved_bytes if train else None
        predicted = log.runs[-1].predicted_peak_bytes if log.runs else None
        measured = reserved is not None and allocated is not None
        fragmentation = reserved - allocated if measured else None
        counts = {}
        source = f"last training step, {train.step:,}" if train else "no step recorded"
    sizes = [v for v in (allocated, predicted, reserved) if v is not None]
    unit, scale = memory_unit(max(sizes, default=0))

    def size(value: int | None) -> str:
        return missing if value is None else f"{value / scale:,.2f} {unit}"

    rows: Rows = [
        ("measured at", source),
        ("max allocated", size(allocated)),
        ("predicted peak", "no prediction recorded" if predicted is None else size(predicted)),
    ]
    if allocated is not None and predicted:
        rows.append(("measured / predicted", f"{allocated / predicted:.3f}"))
    rows.append(("reserved", size(reserved)))
    rows.append(("fragmentation (reserved - allocated)", size(fragmentation)))
    for label, count in counts.items():
        rows.append((label, missing if count is None else f"{count:,}"))
    return rows


def summary_text(log: RunLog, title: str) -> str:
    """The summary and the final memory table as aligned ``label  value`` lines."""
    sections = [("", summary_rows(log)), ("memory", memory_rows(log))]
    width = max(len(label) for _, rows in sections for label, _ in rows)
    lines = [title]
    for heading, rows in sections:
        if heading:
            lines.append(f"{heading}:")
        lines.extend(f"  {label:<{width}}  {value}" for label, value in rows)
    return "\n".join(lines) + "\n"
