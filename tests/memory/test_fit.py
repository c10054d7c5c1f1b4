"""``fit``'s search: its answer fits (with the headroom asked, at the strongest maths-keeping
knobs) and the next value up does not, by the same estimator; the winner's cheapest knobs fit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freezegen.memory.analytic import estimate_analytic
from freezegen.memory.fit import ACCUM, MICRO, SEQ, FitError, _candidates, _set, fit
from freezegen.memory.fixes import fits_with, strongest_safe
from freezegen.spec import load_text


def _spec(preset: str, micro: int, accum: int, seq: int, gpu: str, precision: str = "bf16"):
    text = (
        f"version: 1\nmodel: {{preset: {preset}}}\nprecision: {precision}\n"
        f"batch: {{micro_batch_size: {micro}, grad_accum_steps: {accum}, seq_len: {seq}}}\n"
        f"hardware: {{gpu: {gpu}}}\n"
    )
    result = load_text(text, "fit.yaml")
    assert result.spec is not None, result.diagnostics
    return result.spec


def _fits(spec, key, value, held, kept, headroom):
    return fits_with(
        estimate_analytic(strongest_safe(_set(spec, key, value, kept), held)), headroom
    )


@settings(max_examples=12, deadline=None)
@given(
    preset=st.sampled_from(["gpt2", "gpt2-medium", "qwen2-0.5b", "tinyllama-1.1b"]),
    micro=st.sampled_from([1, 2, 4, 8]),
    accum=st.sampled_from([1, 2, 4]),
    seq=st.sampled_from([256, 512, 1024]),
    gpu=st.sampled_from(["T4", "A10G", "L4"]),
    key=st.sampled_from([MICRO, SEQ]),
    headroom=st.sampled_from([0.0, 0.1]),
)
def test_the_answer_fits_and_the_next_value_up_does_not(
    preset, micro, accum, seq, gpu, key, headroom
):
    spec = _spec(preset, micro, accum, seq, gpu)
    found = fit(spec, [key], headroom=headroom)
    held = {key}
    kept = key == MICRO
    candidates = _candidates(spec, key, held, 1)
    best = found.best[key]
    if best is None:
        assert not _fits(spec, key, candidates[0], held, kept, headroom)
        assert found.fix is None
        return
    assert _fits(spec, key, best, held, kept, headroom)
    bigger = [c for c in candidates if c > best][:1]
    if bigger:
        assert not _fits(spec, key, bigger[0], held, kept, headroom)
    assert found.fix is not None and fits_with(found.fix.estimate, headroom)
    fixed = found.fix.spec.batch  # every knob fit may use keeps the global batch
    assert fixed.micro_batch_size * fixed.grad_accum_steps == micro * accum


def test_the_micro_batch_keeps_the_global_batch_unless_accumulation_is_kept():
    spec = _spec("gpt2", 4, 8, 512, "A100-80GB")
    found = fit(spec, [MICRO])
    batch = found.fix.spec.batch
    assert batch.micro_batch_size * batch.grad_accum_steps == 32 and found.best[MICRO] == 32
    grown = fit(spec, [MICRO], keep=[ACCUM])
    assert grown.fix.spec.batch.grad_accum_steps == 8 and grown.best[MICRO] > 32


def test_seq_len_stops_at_the_models_positions_and_takes_multiples():
    spec = _spec("gpt2", 1, 1, 128, "H100-80GB")
    assert fit(spec, [SEQ]).best[SEQ] == 1024  # gpt2's learned positions
    assert fit(spec, [SEQ], multiple_of=100).best[SEQ] == 1000


def test_nothing_fits_is_an_answer_not_an_error():
    found = fit(_spec("llama-2-7b", 1, 1, 4096, "T4", precision="fp32"), [SEQ])
    assert found.best[SEQ] is None and found.fix is None


@pytest.mark.parametrize(
    ("key", "why"),
    [("batch.nope", "not a key"), ("precision", "not a whole number"), ("compile", "not a whole")],
)
def test_keys_that_cannot_be_maximized_are_refused(key: str, why: str):
    with pytest.raises(FitError, match=why):
        fit(_spec("gpt2", 1, 1, 128, "T4"), [key])
