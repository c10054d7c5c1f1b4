"""``freezegen report RUN``: figures and a page from a run's metrics.jsonl; a user's mistake
is one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser

import pytest
from typer.testing import CliRunner

from freezegen.cli import app
from freezegen.commands import report
from tests import metrics_records as rec

pytest.importorskip("matplotlib")

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _run_folder(tmp_path, records):
    folder = tmp_path / "checkpoints"
    rec.write_metrics(folder / "metrics.jsonl", records)
    return folder


def test_report_writes_figures_and_page_into_run_report(tmp_path):
    folder = _run_folder(tmp_path, rec.cpu_run())
    result = report.run(report.Options(run=folder))
    out = folder / "report"
    assert result.exit_code == 0
    assert result.written == [out / "loss.svg", out / "throughput.svg", out / "report.html"]
    assert result.text("stderr") == "".join(f"wrote {p}\n" for p in result.written)
    stdout = result.text("stdout")
    assert stdout.startswith("freezegen report: checkpoints\n")
    assert "best validation loss" in stdout and "not measured on the CPU" in stdout
    assert not (out / "memory.svg").exists()


def test_out_and_png_and_a_metrics_file_given_directly(tmp_path):
    folder = _run_folder(tmp_path, rec.cuda_run())
    out = tmp_path / "elsewhere"
    result = runner.invoke(
        app, ["report", str(folder / "metrics.jsonl"), "-o", str(out), "--format", "png"]
    )
    assert result.exit_code == 0, result.output
    for name in ("loss", "throughput", "memory"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    assert (out / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not (folder / "report").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such run folder or file: {folder}"),
        (
            "no metrics",
            "{folder} holds no metrics.jsonl: give the run's checkpoint folder (checkpoint.dir "
            "of its spec), where the training script writes it",
        ),
        (
            "empty",
            "{folder}/metrics.jsonl: no step recorded yet (no train, eval or memory record); "
            "run the training script, then report",
        ),
        (
            "malformed",
            '{folder}/metrics.jsonl:3: "loss" of a "train" record is the string "x", not a number',
        ),
        ("not json", "{folder}/metrics.jsonl:2: not JSON: Expecting value (column 1)"),
    ],
)
def test_a_users_mistake_is_one_line_and_exit_2(tmp_path, setup, message):
    folder = tmp_path / "checkpoints"
    if setup == "no metrics":
        folder.mkdir()
    elif setup == "empty":
        rec.write_metrics(folder / "metrics.jsonl", [rec.run()])
    elif setup == "malformed":
        rec.write_metrics(
            folder / "metrics.jsonl", [rec.run(), rec.train(1), rec.train(2, loss="x")]
        )
    elif setup == "not json":
        rec.write_metrics(folder / "metrics.jsonl", [rec.run(), "]", rec.train(1)])
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 2
    assert result.output == f"freezegen: error: {message.format(folder=folder)}\n"
    assert not (folder / "report").exists()


def test_unknown_format_and_an_output_that_is_a_file(tmp_path):
    folder = _run_folder(tmp_path, rec.cpu_run())
    result = runner.invoke(app, ["report", str(folder), "--format", "pdf"])
    assert result.exit_code == 2
    assert result.output == "freezegen: error: unknown --format 'pdf'; choose svg or png\n"
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["report", str(folder), "-o", str(blocker)])
    assert result.exit_code == 2
    assert "is not a folder" in result.output and "Traceback" not in result.output


def test_without_matplotlib_it_says_how_to_install_it(tmp_path, monkeypatch):
    folder = _run_folder(tmp_path, rec.cpu_run())
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = report.run(report.Options(run=folder))
    assert result.exit_code == 2
    assert result.text("stderr") == (
        "freezegen: error: freezegen report needs matplotlib: pip install 'freezegen[plot]' "
        "(or pip install matplotlib)\n"
    )


class _Urls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]


@pytest.mark.slow
def test_report_over_a_run_folder_in_a_real_process(tmp_path):
    """A run folder as a resumed training run leaves it (checkpoints beside metrics.jsonl,
    resumed once, evaluated, a block thawed), reported by the installed command. The records
    are written to the schema by tests/metrics_records.py, so the resume lands where the test
    wants it; the next test reports a real generated run."""
    records = rec.cpu_run(30)
    records.insert(25, rec.run(12))
    folder = _run_folder(tmp_path, records)
    (folder / "step-00000020").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "freezegen", "report", str(folder), "--format", "png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "resumed at step" in proc.stdout and "Traceback" not in proc.stderr
    out = folder / "report"
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "report.html", "throughput.png"]
    assert (out / "loss.png").read_bytes().startswith(PNG_SIGNATURE)
    urls = _Urls()
    urls.feed((out / "report.html").read_text(encoding="utf-8"))
    assert len(urls.urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls.urls)


@pytest.mark.slow
def test_report_over_a_generated_scripts_own_run(tmp_path):
    """End to end: a generated tiny script trains with evaluation and a thaw on the CPU, is
    killed and resumed, and `freezegen report` draws the metrics.jsonl it wrote."""
    from tests.generate.conftest import generate, run_and_kill, run_script, tiny_spec

    spec = tiny_spec(
        tmp_path,
        freeze={"layers": {"first": 1}, "schedule": [{"at_step": 3, "unfreeze": {"layers": "0"}}]},
        train={"max_steps": 40, "log_every": 2},
        checkpoint={"every_steps": 4},
        eval={"every_steps": 4, "max_batches": 2},
    )
    script = generate(spec)
    # Lines starting "step ": 2/40, 3: unfroze, 4/40, 4/40 val, 6/40, 8/40: step 4's
    # checkpoint was written before step 6 trained; the kill leaves 30 steps undone.
    assert run_and_kill(script, steps=6, delay=0.0) is None
    run_script(script).check()
    folder = script.parent / "checkpoints"
    proc = subprocess.run(
        [sys.executable, "-m", "freezegen", "report", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "resumed at step" in proc.stdout and "best validation loss" in proc.stdout
    assert "steps                                 40 of 40" in proc.stdout
    assert "not measured on the CPU" in proc.stdout
    out = folder / "report"
    assert sorted(p.name for p in out.iterdir()) == ["loss.svg", "report.html", "throughput.svg"]
    page = (out / "report.html").read_text(encoding="utf-8")
    urls = _Urls()
    urls.feed(page)
    assert urls.urls and all(u.startswith("data:image/svg+xml") for u in urls.urls)
    assert "freeze.schedule[0]" in page or "thaw" in page
