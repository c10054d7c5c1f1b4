"""freezegen.runlog reads metrics.jsonl as the schema says: tolerant of what it does not know,
located and strict about what it does."""

from __future__ import annotations

import json
import math

import pytest

from freezegen.runlog import MetricsError, RunRecord, TrainRecord, read_metrics
from tests import metrics_records as rec


def test_a_cpu_run_reads_with_its_nulls(tmp_path):
    path = rec.write_metrics(tmp_path / "metrics.jsonl", rec.cpu_run(20))
    log = read_metrics(tmp_path)  # the run folder finds metrics.jsonl
    assert log.path == path
    assert [r.step for r in log.train] == list(range(1, 21))
    assert log.train[0] == TrainRecord(**{k: v for k, v in rec.train(1).items() if k != "kind"})
    assert log.train[0].max_allocated_bytes is None and log.memory[0].alloc_retries is None
    assert [r.step for r in log.evals] == [5, 10, 15, 20]
    assert log.best_eval.step == 20 and log.best_eval.val_loss == pytest.approx(1.0)
    assert [(t.step, t.entry, t.tensors) for t in log.thaws] == [(10, 0, 9)]
    assert log.runs[0].device == "cpu" and log.resumes == []
    assert log.last_step == 20 and not log.empty and not log.incomplete_tail


def test_a_resumed_run_keeps_both_starts_and_the_later_of_repeated_steps(tmp_path):
    records = [rec.run(), *(rec.train(s) for s in range(1, 8))]
    # killed after step 7, resumed from the checkpoint at step 5 without dropping 6 and 7
    records += [rec.run(5), rec.train(6, loss=9.0), rec.train(7, loss=8.0), rec.train(8)]
    log = read_metrics(rec.write_metrics(tmp_path / "metrics.jsonl", records))
    assert [r.step for r in log.runs] == [0, 5]
    assert [r.step for r in log.resumes] == [5]
    assert [r.step for r in log.train] == list(range(1, 9))
    assert [log.train[5].loss, log.train[6].loss] == [9.0, 8.0]


def test_best_eval_is_the_lowest_finite_loss_and_the_earliest_on_a_tie(tmp_path):
    records = [
        rec.evaluation(1, 2.0),
        rec.evaluation(2, 1.0),
        rec.evaluation(3, float("nan")),
        rec.evaluation(4, 1.0),
    ]
    log = read_metrics(rec.write_metrics(tmp_path / "m.jsonl", records))
    assert log.best_eval.step == 2
    only_nan = read_metrics(rec.write_metrics(tmp_path / "n.jsonl", [rec.evaluation(1, math.nan)]))
    assert only_nan.best_eval is None


def test_unknown_kinds_and_fields_are_skipped(tmp_path):
    records = [
        rec.run(gpu_name="H100", schema=2),
        {"kind": "histogram", "step": 1, "time": 0.0, "bins": [1, 2]},
        {"kind": "histogram"},  # an unknown kind's fields are not checked at all
        rec.train(1, tokens_per_s=5, extra={"nested": True}),
    ]
    log = read_metrics(rec.write_metrics(tmp_path / "m.jsonl", records))
    assert log.runs == [
        RunRecord(
            step=0,
            time=1_700_000_000.0,
            schema=2,
            max_steps=40,
            device="cpu",
            world_size=1,
            predicted_peak_bytes=3 << 30,
            trainable_parameters=1_000,
            total_parameters=4_000,
        )
    ]
    assert log.train[0].tokens_per_s == 5.0 and isinstance(log.train[0].tokens_per_s, float)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON: Expecting property name enclosed in double quotes (column 2)"),
        ("[1, 2]", "a record is a JSON object, not an array"),
        ('{"step": 3}', 'a record needs a "kind" (a string)'),
        (
            json.dumps({**rec.train(3), "loss": None}),
            '"loss" of a "train" record is null, not a number',
        ),
        (
            json.dumps({**rec.train(3), "reserved_bytes": 1.5}),
            '"reserved_bytes" of a "train" record is the number 1.5, not an integer or null',
        ),
        (
            json.dumps({k: v for k, v in rec.evaluation(3, 1.0).items() if k != "val_ppl"}),
            'an "eval" record needs "val_ppl"',
        ),
        (
            json.dumps({**rec.thaw(3), "tensors": True}),
            '"tensors" of a "thaw" record is true, not an integer',
        ),
        (
            json.dumps({**rec.run(), "device": 0}),
            '"device" of a "run" record is the number 0, not a string',
        ),
    ],
)
def test_a_malformed_line_is_located(tmp_path, line, message):
    path = rec.write_metrics(
        tmp_path / "metrics.jsonl", [rec.run(), rec.train(1), line, rec.train(2)]
    )
    with pytest.raises(MetricsError) as caught:
        read_metrics(path)
    assert str(caught.value) == f"{path}:3: {message}"
    assert caught.value.line == 3


def test_a_cut_off_last_line_is_left_out_and_noted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    whole = json.dumps(rec.train(1)) + "\n"
    path.write_text(whole + json.dumps(rec.train(2))[:30], encoding="utf-8")
    log = read_metrics(path)
    assert [r.step for r in log.train] == [1] and log.incomplete_tail
    # the same text with its newline is a finished line, so a broken one
    path.write_text(whole + json.dumps(rec.train(2))[:30] + "\n", encoding="utf-8")
    with pytest.raises(MetricsError, match=r"metrics\.jsonl:2: not JSON"):
        read_metrics(path)


def test_an_empty_file_is_an_empty_log(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    log = read_metrics(path)
    assert log.empty and log.last_step == 0 and log.best_eval is None
    only_start = read_metrics(rec.write_metrics(path, [rec.run()]))
    assert only_start.empty and len(only_start.runs) == 1


def test_a_file_that_cannot_be_read_says_why(tmp_path):
    with pytest.raises(MetricsError) as caught:
        read_metrics(tmp_path / "metrics.jsonl")
    assert str(caught.value) == f"{tmp_path / 'metrics.jsonl'}: No such file or directory"
    (tmp_path / "bad.jsonl").write_bytes(b'{"kind": "run"}\n{"x": "\xff"}\n')
    with pytest.raises(MetricsError, match=r"bad\.jsonl:2: not UTF-8 text"):
        read_metrics(tmp_path / "bad.jsonl")
