"""``freezegen check`` as users, CI and pre-commit call it: exit codes, formats, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from freezegen.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
CLEAN = "import torch\n\nstate = torch.load('a.pt', weights_only=True)\n"
WARN = "import torch\n\nmodel.load_state_dict(torch.load('a.pt'))\n"
ERROR = """\
import torch


def train(model, loader, optimizer, accum):
    for step, batch in enumerate(loader):
        optimizer.zero_grad()
        (model(batch).mean() / accum).backward()
        if (step + 1) % accum == 0:
            optimizer.step()
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run(*args: str | Path):
    return runner.invoke(app, ["check", *map(str, args), "--no-config"])


def test_clean_exits_0(tmp_path):
    result = run(write(tmp_path, "train.py", CLEAN))
    assert result.exit_code == 0, result.output
    assert "All checks passed (1 file)." in result.output


def test_error_exits_1_located(tmp_path):
    path = write(tmp_path, "train.py", ERROR)
    result = run(path)
    assert result.exit_code == 1, result.output
    assert f"{path}:6:9: FG505 optimizer.zero_grad() runs every micro-step" in result.output
    assert "help: call it right after optimizer.step()" in result.output


def test_warnings_pass_unless_strict(tmp_path):
    path = write(tmp_path, "train.py", WARN)
    assert run(path).exit_code == 0
    assert run(path, "--strict").exit_code == 1
    assert run(path, "--strict", "--ignore", "FG507").exit_code == 0
    assert run(path, "--strict", "--select", "FG501,FG502").exit_code == 0


def test_unknown_selector_and_format_are_usage_errors(tmp_path):
    path = write(tmp_path, "train.py", CLEAN)
    assert run(path, "--select", "FG1").exit_code == 2  # spec rules are not check rules
    assert run(path, "--format", "xml").exit_code == 2
    assert run(path, "-j", "0").exit_code == 2
    assert run(tmp_path / "missing.py").exit_code == 2


def test_folder_is_searched_for_python_files(tmp_path):
    write(tmp_path, "pkg/a.py", ERROR)
    write(tmp_path, "pkg/sub/b.py", WARN)
    write(tmp_path, "pkg/notes.txt", ERROR)
    write(tmp_path, "pkg/.venv/c.py", ERROR)
    result = run(tmp_path / "pkg", "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["summary"]["files"] == 2
    assert sorted(Path(d["path"]).name for d in payload["diagnostics"]) == ["a.py", "b.py"]


def test_failures_are_data_and_the_run_goes_on(tmp_path):
    broken = write(tmp_path, "a_broken.py", "import torch\n\ndef f(:\n    torch.load(p)\n")
    latin = write(tmp_path, "b_latin.py", b"import torch\nname = '\xff'\ntorch.load(p)\n")
    write(tmp_path, "c_train.py", ERROR)
    result = run(tmp_path, "--format", "json")
    assert result.exit_code == 1
    found = {
        (Path(d["path"]).name, d["code"], d["line"])
        for d in json.loads(result.output)["diagnostics"]
    }
    assert (broken.name, "FG500", 3) in found
    assert (latin.name, "FG500", 2) in found
    assert ("c_train.py", "FG505", 6) in found
    assert "Traceback" not in result.output


def test_unreadable_file_is_fg500(tmp_path):
    link = tmp_path / "gone.py"
    link.symlink_to(tmp_path / "nowhere.py")
    result = run(link)
    assert result.exit_code == 1
    assert "FG500 cannot read" in result.output


def test_prefilter_skips_the_rules_for_files_without_torch(tmp_path):
    # would be an FG505 if the rules ran on it
    path = write(tmp_path, "other.py", ERROR.replace("import torch", "import jax"))
    result = run(path)
    assert result.exit_code == 0 and "All checks passed (1 file)." in result.output


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"import jax\n\ndef f(:\n", 3, "syntax error"),
        (b"name = '\xff'\n", 1, "cannot decode"),
        (b"\x7fELF\x02\x01\x01\x00\x00", 1, "null character"),
        (b"<html>\n<body>not python</body>\n", 1, "syntax error"),
    ],
    ids=["syntax-error", "latin-1-undeclared", "binary", "not-python"],
)
def test_files_the_prefilter_skips_are_still_decoded_and_parsed(tmp_path, content, line, message):
    write(tmp_path, "fine.py", "import jax\n")
    write(tmp_path, "odd.py", content)
    result = run(tmp_path, "--format", "json")
    assert result.exit_code == 1, result.output
    (found,) = json.loads(result.output)["diagnostics"]
    assert (Path(found["path"]).name, found["code"], found["line"]) == ("odd.py", "FG500", line)
    assert message in found["message"]


def test_suppression_comment(tmp_path):
    text = ERROR.replace(
        "optimizer.zero_grad()", "optimizer.zero_grad()  # freezegen: ignore[FG505]"
    )
    assert run(write(tmp_path, "a.py", text)).exit_code == 0
    other = ERROR.replace(
        "optimizer.zero_grad()", "optimizer.zero_grad()  # freezegen: ignore[FG503]"
    )
    assert run(write(tmp_path, "b.py", other)).exit_code == 1
    bare = ERROR.replace("optimizer.zero_grad()", "optimizer.zero_grad()  # freezegen: ignore")
    assert run(write(tmp_path, "c.py", bare)).exit_code == 0


def test_pyproject_config_is_shared_with_lint(tmp_path):
    write(
        tmp_path, "pyproject.toml", '[tool.freezegen]\nignore = ["FG505", "FG101"]\nstrict = true\n'
    )
    clean_error = write(tmp_path, "train.py", ERROR)
    assert runner.invoke(app, ["check", str(clean_error)]).exit_code == 0
    warn = write(tmp_path, "load.py", WARN)
    assert runner.invoke(app, ["check", str(warn)]).exit_code == 1  # strict from the config
    assert run(clean_error).exit_code == 1  # --no-config


def test_formats(tmp_path):
    path = write(tmp_path, "train.py", ERROR)
    sarif = json.loads(run(path, "--format", "sarif").output)
    (rule,) = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert rule["id"] == "FG505" and rule["name"] == "zero-grad-in-window"
    assert rule["shortDescription"]["text"].startswith("zero_grad() runs every micro-step")
    result = sarif["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 6,
        "startColumn": 9,
    }
    github = run(path, "--format", "github").output
    assert github.startswith(f"::error file={path},line=6,col=9,title=freezegen FG505::")


def test_fix_writes_and_reports_what_is_left(tmp_path):
    path = write(tmp_path, "train.py", WARN + ERROR.replace("import torch\n", ""))
    result = run(path, "--fix", "--strict")
    assert result.exit_code == 1  # FG505 has no safe fix
    assert "Fixed 1 finding(s) in 1 file(s)." in result.output
    assert "weights_only=True" in path.read_text()
    assert "FG507" not in result.output and "FG505" in result.output
    assert not list(tmp_path.glob(".*.tmp"))


def test_jobs_give_the_same_report(tmp_path):
    for i in range(6):
        write(tmp_path, f"m{i}.py", ERROR if i % 2 else WARN)
    one = run(tmp_path, "--format", "json", "-j", "1")
    two = run(tmp_path, "--format", "json", "-j", "2")
    assert one.exit_code == two.exit_code == 1
    assert json.loads(one.output) == json.loads(two.output)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_that_crashed_the_parser_is_fg500_and_the_run_goes_on(tmp_path, jobs):
    # 2,000 nested brackets killed the process (SIGSEGV in libcst), and with -j 2 the whole
    # run ended in BrokenProcessPool
    write(tmp_path, "a_deep.py", "import torch\ny = " + "(" * 2000 + "1" + ")" * 2000 + "\n")
    write(tmp_path, "b_train.py", ERROR)
    result = run(tmp_path, "--format", "json", "-j", jobs)
    assert result.exit_code == 1, result.output
    found = {(Path(d["path"]).name, d["code"]) for d in json.loads(result.output)["diagnostics"]}
    assert found == {("a_deep.py", "FG500"), ("b_train.py", "FG505")}


def test_precommit_hook_for_python_files():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = (h for h in hooks if h["id"] == "freezegen-check")
    assert hook["entry"] == "freezegen check"
    assert hook["types"] == ["python"] and hook["language"] == "python"
    assert "files" not in hook


def test_unsafe_fixes_are_offered_and_applied_only_on_request(tmp_path):
    exported = "import torch\n\nmodel = torch.load('model.pt')\nmodel.eval()\n"
    path = write(tmp_path, "export.py", WARN + exported.replace("import torch\n", ""))
    shown = run(path)
    assert shown.exit_code == 0
    assert "help: pass weights_only=True (--fix applies it)" in shown.output
    assert "(--unsafe-fixes applies it)" in shown.output
    assert run(path, "--unsafe-fixes").exit_code == 2  # it applies fixes: --fix says so
    fixed = run(path, "--fix")
    assert "Fixed 1 finding(s) in 1 file(s)." in fixed.output
    assert "torch.load('model.pt')\n" in path.read_text()
    assert "(--unsafe-fixes applies it)" in fixed.output
    both = run(path, "--fix", "--unsafe-fixes", "--strict")
    assert both.exit_code == 0 and "Fixed 1 finding(s) in 1 file(s)." in both.output
    assert "torch.load('model.pt', weights_only=True)" in path.read_text()
