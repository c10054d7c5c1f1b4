"""benchmarks/realworld.py and realworld_export.py over a three-script corpus written here.

The real corpus is third-party code and stays outside the repository; these scripts are our
own, committed to a throwaway git repository so the exporter reads them as it reads a clone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
GIT = shutil.which("git")

PLAIN_LOOP = """\
import torch

model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loader = [(torch.randn(2, 4), torch.randn(2, 1)) for _ in range(8)]
state = torch.load("init.pt")
for x, y in loader:
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""
NO_LOOP = """\
import torch

model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss = model(torch.randn(2, 4)).sum()
loss.backward()
optimizer.step()
"""
NO_TRAINING = "print('no training step here')\n"


@pytest.fixture
def bench(monkeypatch):
    """The two benchmark modules, imported as the scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import realworld
    import realworld_export

    return realworld, realworld_export


@pytest.fixture
def corpus(tmp_path, bench):
    """(manifest, sources, corpus folder): a clone of acme/train holding three scripts, a
    manifest naming them at its commit, and the corpus exported from it."""
    if GIT is None:
        pytest.skip("git is not installed")
    _, export = bench
    clone = tmp_path / "sources" / "acme" / "train"
    (clone / "loops").mkdir(parents=True)
    files = {"loops/plain.py": PLAIN_LOOP, "no_loop.py": NO_LOOP, "readme.py": NO_TRAINING}
    for name, text in files.items():
        (clone / name).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "scripts"]):
        subprocess.run([GIT, *identity, *args], cwd=clone, env=env, check=True)
    commit = subprocess.run(
        [GIT, "rev-parse", "HEAD"], cwd=clone, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    # the exporter reads the commit, not the work tree
    (clone / "loops" / "plain.py").write_text("edited after the commit\n", encoding="utf-8")
    manifest = tmp_path / "manifest.json"
    scripts = [{"repository": "acme/train", "commit": commit, "path": p} for p in files]
    manifest.write_text(json.dumps({"scripts": scripts}), encoding="utf-8")
    folder = tmp_path / "corpus"
    assert export.export(manifest, tmp_path / "sources", folder) == 3
    assert (folder / "acme" / "train" / "loops" / "plain.py").read_text() == PLAIN_LOOP
    return manifest, tmp_path / "sources", folder


def _expected(manifest: Path) -> dict[str, dict]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return {s["path"]: s for s in data["scripts"]}


def test_update_records_outcomes_and_a_second_run_matches(bench, corpus, capsys):
    realworld, _ = bench
    manifest, _, folder = corpus
    assert realworld.main([str(manifest), str(folder)]) == 0  # nothing expected yet: all new
    assert "3 new" in capsys.readouterr().out
    assert realworld.main([str(manifest), str(folder), "--update"]) == 0
    scripts = _expected(manifest)
    plain = scripts["loops/plain.py"]["expected"]
    assert plain["codemod"]["outcome"] == "applied"
    assert {"freeze", "precision", "accumulation"} <= set(plain["codemod"]["transforms"])
    assert any(f.startswith("FG507:6") for f in plain["check"])  # torch.load, line 6
    refused = scripts["no_loop.py"]["expected"]["codemod"]
    assert refused["outcome"] == "refused"
    assert any(r.startswith("6: ") and "accumulation" in r for r in refused["reasons"])
    assert scripts["readme.py"]["expected"] == {"check": [], "codemod": {"outcome": "skipped"}}
    assert all(len(s["sha256"]) == 64 for s in scripts.values())
    capsys.readouterr()
    assert realworld.main([str(manifest), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "3 match, 0 MISMATCH, 0 new" in out
    assert "applied 1, refused 1, skipped 1, unchanged 0" in out
    assert (
        "freezegen codemod --precision bf16 --grad-accum-steps 4 --freeze '*.0.*'"
        in (json.loads(manifest.read_text())["codemod"])
    )


def test_a_changed_outcome_is_a_mismatch_and_exit_1(bench, corpus, capsys):
    realworld, _ = bench
    manifest, _, folder = corpus
    realworld.main([str(manifest), str(folder), "--update"])
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["scripts"][1]["expected"]["check"].append("FG502:99")
    manifest.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert realworld.main([str(manifest), str(folder)]) == 1
    out = capsys.readouterr().out
    assert "2 match, 1 MISMATCH" in out
    assert "MISMATCH acme/train/no_loop.py" in out and "FG502:99" in out


def test_a_review_holds_only_for_the_output_it_judged(bench, corpus, capsys):
    realworld, _ = bench
    manifest, _, folder = corpus
    realworld.main([str(manifest), str(folder), "--update"])
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["scripts"][0]["review"] = "correct"
    manifest.write_text(json.dumps(data), encoding="utf-8")
    realworld.main([str(manifest), str(folder), "--update"])
    assert _expected(manifest)["loops/plain.py"]["review"] == "correct"
    capsys.readouterr()
    assert realworld.main([str(manifest), str(folder)]) == 0
    out = capsys.readouterr().out
    assert "judged in the manifest: correct 1, wrong 0, not judged 0" in out
    assert "acme/train/loops/plain.py: correct" in out
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["scripts"][0]["expected"]["codemod"]["output_sha256"] = "0" * 64  # judged another output
    manifest.write_text(json.dumps(data), encoding="utf-8")
    realworld.main([str(manifest), str(folder), "--update"])
    assert "review" not in _expected(manifest)["loops/plain.py"]


def test_a_stale_or_missing_corpus_is_a_usage_error_not_a_mismatch(bench, corpus, capsys):
    realworld, _ = bench
    manifest, _, folder = corpus
    realworld.main([str(manifest), str(folder), "--update"])
    script = folder / "acme" / "train" / "no_loop.py"
    script.write_text(NO_LOOP + "# edited\n", encoding="utf-8")
    assert realworld.main([str(manifest), str(folder)]) == 2
    assert "not the file at" in capsys.readouterr().err
    script.unlink()
    assert realworld.main([str(manifest), str(folder)]) == 2
    assert "missing; run realworld_export.py first" in capsys.readouterr().err


def test_export_reads_a_bare_mirror_as_it_reads_a_clone(bench, corpus, tmp_path):
    _, export = bench
    manifest, sources, folder = corpus
    mirror = tmp_path / "mirrors" / "acme+train" / "repo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    clone = sources / "acme" / "train"
    subprocess.run([GIT, "clone", "-q", "--bare", str(clone), str(mirror)], env=env, check=True)
    assert export.export(manifest, tmp_path / "mirrors", tmp_path / "again") == 3
    for path in ("loops/plain.py", "no_loop.py", "readme.py"):
        again = tmp_path / "again" / "acme" / "train" / path
        assert again.read_bytes() == (folder / "acme" / "train" / path).read_bytes()


def test_export_names_the_missing_clone_and_commit(bench, corpus, tmp_path, capsys):
    _, export = bench
    manifest, sources, _ = corpus
    assert export.main([str(manifest), str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "git clone https://github.com/acme/train" in capsys.readouterr().err
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["scripts"][0]["commit"] = "1" * 40
    manifest.write_text(json.dumps(data), encoding="utf-8")
    assert export.main([str(manifest), str(sources), str(tmp_path / "out")]) == 2
    assert f"git fetch origin {'1' * 40}" in capsys.readouterr().err


def test_suspects_name_what_an_applied_rewrite_may_duplicate(bench):
    realworld, _ = bench
    source = (
        "scaler = torch.cuda.amp.GradScaler()\n"
        "loss = loss / args.gradient_accumulation_steps\n"
        "p.requires_grad = False\n"
    )
    applied = {"outcome": "applied", "transforms": ["freeze", "precision"]}
    assert realworld.suspects(source, applied) == [
        "own GradScaler",
        "own freezing",
        "no accumulation",
    ]
    assert realworld.suspects(source, {"outcome": "refused", "reasons": []}) == []
    branches = (
        "accelerator = Accelerator(log_with='all') if args.with_tracking else Accelerator()\n"
    )
    accumulating = {"outcome": "applied", "transforms": ["accumulation"]}
    assert realworld.suspects(branches, accumulating) == [
        "Accelerator in two branches",
        "no freeze",
        "no precision",
    ]


def test_refusal_kinds_group_reasons_that_differ_in_specifics(bench):
    realworld, _ = bench
    kinds = {
        realworld.refusal_kind(r)
        for r in (
            "108: cannot add precision: 2 backward calls found; rewrites scripts with one",
            "245: cannot add precision: 3 backward calls found; rewrites scripts with one",
        )
    }
    assert kinds == {"cannot add precision: N backward calls found; rewrites scripts with one"}
    assert (
        realworld.refusal_kind(
            "92: cannot add accumulation: cannot tell how many batches `tqdm(loader)` yields"
        )
        == "cannot add accumulation: cannot tell how many batches `...` yields"
    )


def test_reach_counts_the_transforms_that_make_sense_and_update_keeps_the_judgement(
    bench, corpus, capsys
):
    realworld, _ = bench
    manifest, _, folder = corpus
    realworld.main([str(manifest), str(folder), "--update"])
    capsys.readouterr()
    realworld.main([str(manifest), str(folder)])
    assert (
        "(applied or kept, by the full run or --partial): 1 of 3 (33%)" in capsys.readouterr().out
    )
    data = json.loads(manifest.read_text(encoding="utf-8"))
    why = "one step on one batch: nothing to accumulate over"
    data["scripts"][1]["not_sensible"] = {"accumulation": why}
    manifest.write_text(json.dumps(data), encoding="utf-8")
    assert realworld.main([str(manifest), str(folder), "--update"]) == 0
    out = capsys.readouterr().out
    assert "(applied or kept, by the full run or --partial): 2 of 3 (67%); 1 requested" in out
    assert _expected(manifest)["no_loop.py"]["not_sensible"] == {"accumulation": why}
