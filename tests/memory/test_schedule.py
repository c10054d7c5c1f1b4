"""The peak over a freeze.schedule (freezegen.memory.schedule): lint budgets the most thawed
state the run can reach, and names the entry that reaches it."""

from __future__ import annotations

from freezegen.arch import architecture_for
from freezegen.arch.params import parameter_table
from freezegen.arch.training import plan_training
from freezegen.lint import lint_paths
from freezegen.memory.analytic import estimate_analytic
from freezegen.memory.schedule import firing_order, run_peak, schedule_peak
from freezegen.spec import load_text

BASE = """\
version: 1
model: {preset: gpt2-medium}
batch: {micro_batch_size: 8, seq_len: 1024}
train: {max_steps: 1000}
eval: {every_steps: 10}
"""
SCHEDULE = """\
freeze:
  embeddings: true
  layers: {first: 20}
  schedule:
    - {at_step: 10, unfreeze: {layers: "18-19"}}
    - {when: {plateau: {patience: 2}}, unfreeze: {embeddings: true, layers: "0-17"}}
    - {at_step: 5000, unfreeze: {layers: "0-23"}}
    - {at_step: 100, unfreeze: {layers: "16-17"}}
"""


def _spec(text: str):
    result = load_text(text, "spec.yaml")
    assert result.ok, result.diagnostics
    return result.spec


def _peak(spec):
    arch = architecture_for(spec.model)
    params = parameter_table(arch, spec.model.head, 2)
    return schedule_peak(spec, arch, plan_training(spec, arch, params))


def test_entries_fire_by_step_then_plateaus_and_past_the_end_never():
    assert firing_order(_spec(BASE + SCHEDULE)) == [0, 3, 1]


def test_the_peak_is_the_most_thawed_state_and_names_the_entry_that_reaches_it():
    spec = _spec(BASE + SCHEDULE)
    peak = _peak(spec)
    # Everything that can fire has fired: nothing but the entry past max_steps stays frozen,
    # which is a spec that freezes nothing.
    thawed = estimate_analytic(_spec(BASE))
    assert peak.estimate.peak_bytes == thawed.peak_bytes
    assert peak.entry == 1  # the plateau entry thaws the bottom: the last to raise the peak
    assert run_peak(spec).peak_bytes == peak.estimate.peak_bytes
    assert peak.estimate.peak_bytes > estimate_analytic(spec).peak_bytes


def test_without_a_schedule_the_peak_is_the_estimate_at_the_start():
    spec = _spec(BASE + "freeze: {layers: {first: 20}}\n")
    peak = _peak(spec)
    assert peak.entry is None
    assert peak.estimate.peak_bytes == estimate_analytic(spec).peak_bytes


def test_an_entry_thawing_nothing_new_does_not_move_the_peak():
    text = BASE + SCHEDULE.replace('"16-17"', '"18-19"')
    peak = _peak(_spec(text))
    assert peak.entry == 1


def test_lint_budgets_the_thawed_peak_and_says_at_which_entry(tmp_path):
    path = tmp_path / "spec.yaml"
    # Fits at step 0; over budget once the plateau entry thaws the bottom of the model.
    path.write_text(BASE + SCHEDULE + "hardware: {gpu: A10G}\n", encoding="utf-8")
    report = lint_paths([path])
    over = [d for d in report.diagnostics if d.code == "FG201"]
    assert len(over) == 1
    assert "once freeze.schedule[1] has thawed, on a validation plateau" in over[0].message
    assert "->" in (over[0].fix or "") and not over[0].fix.startswith(":")
