"""freezegen report's figures, summary and page, drawn from handwritten metrics files."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest

from freezegen.report.run_figures import draw_run
from freezegen.report.run_page import render_page
from freezegen.report.run_summary import memory_rows, summary_rows, summary_text
from freezegen.runlog import read_metrics
from tests import metrics_records as rec

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _log(tmp_path, records):
    return read_metrics(rec.write_metrics(tmp_path / "metrics.jsonl", records))


class _Links(HTMLParser):
    """Every tag and every attribute that can fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "data")]


def test_a_cpu_run_says_memory_was_not_measured_on_the_cpu(tmp_path):
    log = _log(tmp_path, rec.cpu_run())
    figures = draw_run(log, "png")
    assert sorted(figures.files) == ["loss", "throughput"]
    assert figures.missing == {
        "memory": "not measured on the CPU (the allocator's figures are CUDA's)"
    }
    assert all(data.startswith(PNG_SIGNATURE) for data in figures.files.values())
    rows = dict(memory_rows(log))
    assert rows["max allocated"].startswith("not measured on the CPU")
    assert rows["predicted peak"] == "3.00 GiB"
    assert rows["cudaMalloc calls"].startswith("not measured on the CPU")
    assert "measured / predicted" not in rows
    page = render_page(log, figures, "run")
    assert "not measured on the CPU (the allocator&#x27;s figures are CUDA&#x27;s)." in page


def test_a_cuda_run_draws_memory_against_the_prediction(tmp_path):
    log = _log(tmp_path, rec.cuda_run())
    figures = draw_run(log, "svg")
    assert sorted(figures.files) == ["loss", "memory", "throughput"] and not figures.missing
    assert b"predicted peak 3.0 GiB" in figures.files["memory"]
    rows = dict(memory_rows(log))
    assert rows["max allocated"] == "2.60 GiB" and rows["reserved"] == "2.90 GiB"
    assert rows["measured / predicted"] == "0.867"
    assert rows["fragmentation (reserved - allocated)"] == "0.30 GiB"
    assert (rows["allocation retries"], rows["cudaMalloc calls"]) == ("0", "57")


def test_without_a_memory_record_the_last_step_is_the_measure(tmp_path):
    log = _log(tmp_path, rec.cuda_run()[:-1])
    rows = dict(memory_rows(log))
    assert rows["measured at"] == "last training step, 20"
    assert rows["fragmentation (reserved - allocated)"] == "0.40 GiB"
    assert "cudaMalloc calls" not in rows  # only the end-of-run record counts them


def test_svg_figures_are_byte_for_byte_repeatable(tmp_path):
    log = _log(tmp_path, rec.cuda_run())
    first, second = draw_run(log, "svg"), draw_run(log, "svg")
    assert first.files == second.files
    assert b"<dc:date>" not in first.files["loss"]


def test_the_summary_names_steps_best_validation_thaws_and_resumes(tmp_path):
    records = rec.cpu_run(20)
    records.insert(12, rec.run(8))
    log = _log(tmp_path, records)
    rows = dict(summary_rows(log))
    assert rows["steps"] == "20 of 40"
    assert rows["device"] == "cpu x 1"
    assert rows["trainable parameters"] == "1,000 of 4,000 (25.0%)"
    assert rows["resumed at step"] == "8"
    assert rows["best validation loss"] == "1 (perplexity 2.718) at step 20"
    assert rows["thaw events"] == "1"
    assert rows["tokens/s (median)"] == "1,010"
    text = summary_text(log, "freezegen report: run")
    assert text.startswith("freezegen report: run\n  steps ") and "\nmemory:\n" in text


def test_a_newer_schema_is_read_and_said(tmp_path):
    log = _log(tmp_path, [rec.run(schema=1), rec.run(5, schema=2), rec.train(6)])
    assert dict(summary_rows(log))["schema"] == (
        "written with metrics schema 2; this freezegen reads schema 1 (what it does not know "
        "is left out)"
    )
    assert "schema" not in dict(summary_rows(_log(tmp_path, rec.cpu_run())))


def test_a_run_without_evaluation_says_so(tmp_path):
    log = _log(tmp_path, [rec.run(), rec.train(1), rec.train(2)])
    assert dict(summary_rows(log))["validation"] == "no evaluation recorded"
    figures = draw_run(log, "svg")
    assert "loss" in figures.files  # the training curve alone
    page = render_page(log, figures, "run")
    assert "No block was thawed." in page


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_the_page_is_self_contained(tmp_path, fmt):
    log = _log(tmp_path, [*rec.cuda_run(), rec.thaw(4, entry=1, tensors=12)])
    figures = draw_run(log, fmt)
    page = render_page(log, figures, "a <run> & more")
    links = _Links()
    links.feed(page)
    mime = {"svg": "image/svg+xml", "png": "image/png"}[fmt]
    assert len(links.urls) == 3
    assert all(url.startswith(f"data:{mime};base64,") for url in links.urls)
    assert not {"script", "link", "iframe", "object", "embed"} & set(links.tags)
    assert "url(" not in page and "@import" not in page
    inlined = [base64.b64decode(url.split(",", 1)[1]) for url in links.urls]
    assert inlined == [figures.files[name] for name in ("loss", "throughput", "memory")]
    assert "<title>a &lt;run&gt; &amp; more</title>" in page
    assert "<td>4</td><td>1</td><td>12</td>" in page  # the thaw table
