"""DDP: full replicas on every rank, plus the reducer's gradient buckets."""

from __future__ import annotations

from dataclasses import replace

from freezegen.memory.analytic.parts import Moment, Part, each, rounded


def with_reducer_buckets(moments: list[Moment], n_train: int, pbytes: int) -> list[Moment]:
    """``moments`` with DDP's reducer buckets among the gradients of each: with
    ``gradient_as_bucket_view=False`` they live all step beside ``.grad``."""
    bucket = Part(
        "DDP reducer buckets", rounded(n_train * pbytes), each(n_train, pbytes, "trainable")
    )
    return [replace(m, gradients=(*m.gradients, bucket)) for m in moments]
