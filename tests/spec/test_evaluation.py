"""The evaluation sections (issue 12): eval, checkpoint.keep_best, train.early_stop and a
schedule entry that thaws on a validation plateau; what needs what (freezegen.spec.evaluation)."""

from __future__ import annotations

from freezegen.spec import load_text
from freezegen.spec.evaluation import (
    has_validation_data,
    missing_validation_data,
    uses_plateaus,
    validation_consumers,
)

BASE = """\
version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
"""
PLATEAU = """\
freeze:
  layers: {first: 6}
  schedule:
    - {at_step: 10, unfreeze: {layers: "5"}}
    - {when: {plateau: {patience: 3, min_delta: 0.01}}, unfreeze: {layers: "4"}}
"""


def _load(text: str):
    return load_text(text, "spec.yaml")


def test_the_sections_load_with_their_defaults():
    result = _load(
        BASE + PLATEAU + "eval: {every_steps: 5}\ntrain: {early_stop: {patience: 2}}\n"
        "checkpoint: {keep_best: true}\n"
    )
    assert result.ok, result.diagnostics
    spec = result.spec
    assert (spec.eval.every_steps, spec.eval.max_batches, spec.eval.at_start) == (5, 50, False)
    assert (spec.train.early_stop.patience, spec.train.early_stop.min_delta) == (2, 0.0)
    assert spec.checkpoint.keep_best is True
    fixed, plateau = spec.freeze.schedule
    assert fixed.plateau is None and fixed.at_step == 10
    assert plateau.at_step is None and plateau.plateau.patience == 3
    assert plateau.plateau.min_delta == 0.01
    assert uses_plateaus(spec) and has_validation_data(spec)
    assert missing_validation_data(spec) is None
    assert [key for _, key in validation_consumers(spec)] == [
        "checkpoint.keep_best",
        "train.early_stop",
        "freeze.schedule[1].when.plateau",
    ]


def test_a_schedule_entry_takes_exactly_one_trigger_and_says_where():
    both = '    - {at_step: 3, when: {plateau: {patience: 1}}, unfreeze: {layers: "3"}}\n'
    neither = '    - {unfreeze: {layers: "2"}}\n'
    result = _load(BASE + PLATEAU + both + neither)
    assert not result.ok
    found = [(d.code, d.line, d.message) for d in result.diagnostics]
    assert [(code, line) for code, line, _ in found] == [("FG004", 9), ("FG004", 10)]
    assert all("exactly one of at_step or when" in message for _, _, message in found)


def test_patience_is_positive_and_min_delta_not_negative():
    result = _load(BASE + "eval: {every_steps: 5}\ntrain: {early_stop: {patience: 0}}\n")
    assert not result.ok
    result = _load(
        BASE + "eval: {every_steps: 5}\ntrain: {early_stop: {patience: 1, min_delta: -1}}\n"
    )
    assert not result.ok


def test_a_factory_source_has_no_validation_data():
    result = _load(
        BASE + 'data: {source: factory, factory: "pkg.data:build"}\neval: {every_steps: 5}\n'
    )
    assert result.ok
    assert "data.source factory has none" in missing_validation_data(result.spec)
