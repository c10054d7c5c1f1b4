"""The ``freezegen-lint`` hook of .pre-commit-hooks.yaml, run by the real pre-commit.

The slow tests copy the package files of this checkout (uncommitted edits included) into a
temporary git repository, commit them there and point a user repository's
.pre-commit-config.yaml at that commit. pre-commit then builds its own virtualenv and pip-installs
the hook repository; PIP_CONSTRAINT=constraints.txt keeps torch at the CPU build on local disk
instead of a multi-GB CUDA download. The first run takes about half a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# What pip needs to build the package (the wheel force-includes templates/) and pre-commit to
# find the hooks; tests and examples are left out to keep the snapshot small.
HOOK_REPO_FILES = (
    "pyproject.toml",
    "README.md",
    "freezegen",
    "templates",
    ".pre-commit-hooks.yaml",
    "constraints.txt",
)
CONSTRAINTS = ROOT / "constraints.txt"
BAD_SPEC = "version: 1\nmodle:\n  preset: gpt2\n"  # unknown key 'modle' (did you mean 'model'?)
GOOD_SCRIPT = """\
import torch


def train(model, loader, optimizer, scheduler):
    for x in loader:
        loss = model(x).sum()
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
"""
BAD_SCRIPT = GOOD_SCRIPT.replace(  # FG509: the scheduler steps before the optimizer
    "        optimizer.step()\n        scheduler.step()\n",
    "        scheduler.step()\n        optimizer.step()\n",
)
GIT_IDENTITY = (
    "-c",
    "user.name=freezegen tests",
    "-c",
    "user.email=tests@freezegen.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "init.defaultBranch=main",
)


def _tool(name: str) -> str | None:
    """The executable from this interpreter's environment first, then from PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.is_file() else shutil.which(name)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [GIT, *GIT_IDENTITY, *args],
        cwd=cwd,
        env=_clean_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _clean_env() -> dict[str, str]:
    """This environment minus what would steer git or pre-commit elsewhere (e.g. inside a hook)."""
    drop = {"SKIP", "PRE_COMMIT", "PRE_COMMIT_COLOR", "VIRTUAL_ENV", "PYTHONHOME"}
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k not in drop}


PRE_COMMIT = _tool("pre-commit")
GIT = shutil.which("git")


def test_hook_files_pattern_is_spec_filename():
    """The hook selects exactly the files that ``freezegen lint FOLDER`` would find."""
    from freezegen.spec.models import SPEC_FILENAME

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = (h for h in hooks if h["id"] == "freezegen-lint")
    assert hook["files"] == SPEC_FILENAME.pattern
    assert hook["entry"] == "freezegen lint"
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    for path in ("freezegen.yaml", "a/b/freezegen.yml", "x.freezegen.yaml", "d/x.y.freezegen.yml"):
        assert pattern.search(path), path
    for path in (
        "other.yaml",
        "myfreezegen.yaml",
        "freezegen.yaml.bak",
        "freezegen.json",
        "freezegen.yaml/x.py",
    ):
        assert not pattern.search(path), path


class PreCommitRepo:
    """A user repository whose .pre-commit-config.yaml uses a snapshot of this checkout."""

    def __init__(self, base: Path) -> None:
        self.hook_repo = base / "hook-repo"
        self.user_repo = base / "user-repo"
        self.home = base / "pre-commit-home"
        self._make_hook_repo()
        self._make_user_repo()

    def _make_hook_repo(self) -> None:
        self.hook_repo.mkdir()
        for name in HOOK_REPO_FILES:
            src, dst = ROOT / name, self.hook_repo / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        _git("init", "-q", cwd=self.hook_repo)
        _git("add", "-A", cwd=self.hook_repo)
        _git("commit", "-q", "-m", "snapshot of the freezegen checkout", cwd=self.hook_repo)
        self.rev = _git("rev-parse", "HEAD", cwd=self.hook_repo)

    def _make_user_repo(self) -> None:
        repo = self.user_repo
        (repo / "tiny").mkdir(parents=True)
        for name in ("freezegen.yaml", "config.json"):  # good spec, in a subfolder
            shutil.copy2(ROOT / "examples" / "tiny" / name, repo / "tiny" / name)
        (repo / "bad.freezegen.yaml").write_text(BAD_SPEC, encoding="utf-8")  # bad, at the root
        (repo / "other.yaml").write_text("not: a spec\nmodle: 1\n", encoding="utf-8")
        (repo / "train_good.py").write_text(GOOD_SCRIPT, encoding="utf-8")
        (repo / "train_bad.py").write_text(BAD_SCRIPT, encoding="utf-8")
        config = {
            "repos": [
                {
                    "repo": self.hook_repo.as_posix(),
                    "rev": self.rev,
                    "hooks": [{"id": "freezegen-lint"}, {"id": "freezegen-check"}],
                }
            ]
        }
        (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        _git("init", "-q", cwd=repo)
        _git("add", "-A", cwd=repo)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = _clean_env()
        env["PRE_COMMIT_HOME"] = str(self.home)
        env["PIP_CONSTRAINT"] = str(CONSTRAINTS)
        return subprocess.run(
            [PRE_COMMIT, "run", "--color=never", *args],
            cwd=self.user_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )


@pytest.fixture(scope="module")
def precommit_repo(tmp_path_factory) -> PreCommitRepo:
    if PRE_COMMIT is None:
        pytest.skip("the pre-commit executable is not installed")
    if GIT is None:
        pytest.skip("the git executable is not installed")
    return PreCommitRepo(tmp_path_factory.mktemp("precommit"))


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_hook_reports_bad_spec_only(precommit_repo):
    proc = precommit_repo.run("--all-files")
    out = _output(proc)
    assert proc.returncode == 1, out
    assert "- hook id: freezegen-lint" in out, out
    assert re.search(r"(?m)^bad\.freezegen\.yaml:\d+:\d+: FG002 ", out), out
    assert not re.search(r"(?m)^tiny/freezegen\.yaml:", out), out
    assert "tiny/freezegen.yaml" not in out, out
    assert "other.yaml" not in out, out
    assert "- hook id: freezegen-check" in out, out
    assert re.search(r"(?m)^train_bad\.py:8:9: FG509 ", out), out
    assert "train_good.py" not in out, out
    assert "Traceback" not in out, out


@pytest.mark.slow
def test_check_hook_passes_a_correct_script(precommit_repo):
    proc = precommit_repo.run("--files", "train_good.py", "other.yaml")
    out = _output(proc)
    assert proc.returncode == 0, out
    assert re.search(r"freezegen check\.+Passed", out), out
    assert re.search(r"freezegen lint\.+\(no files to check\)Skipped", out), out


@pytest.mark.slow
def test_hook_passes_good_spec_and_skips_other_yaml(precommit_repo):
    proc = precommit_repo.run("--files", "tiny/freezegen.yaml", "tiny/config.json", "other.yaml")
    out = _output(proc)
    assert proc.returncode == 0, out
    assert re.search(r"freezegen lint\.+Passed", out), out

    proc = precommit_repo.run("--files", "other.yaml")
    out = _output(proc)
    assert proc.returncode == 0, out
    assert re.search(r"freezegen lint\.+\(no files to check\)Skipped", out), out


@pytest.mark.slow
def test_hook_env_honours_torch_constraint(precommit_repo):
    """pip installed the pinned CPU torch (or none at all), never a resolver-chosen build."""
    precommit_repo.run("--files", "other.yaml")  # makes sure the environment exists
    pins = re.findall(r"(?m)^torch==(\S+)", CONSTRAINTS.read_text(encoding="utf-8"))
    pythons = sorted(precommit_repo.home.glob("repo*/py_env-*/bin/python")) or sorted(
        precommit_repo.home.glob("repo*/py_env-*/Scripts/python.exe")
    )
    assert pythons, f"no hook environment under {precommit_repo.home}"
    code = (
        "import importlib.metadata as m\n"
        "try:\n    print(m.version('torch'))\nexcept m.PackageNotFoundError:\n    print('')\n"
    )
    version = subprocess.run(
        [str(pythons[0]), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    if version and pins:
        assert version.split("+")[0] == pins[0], (version, pins)


def test_snapshot_holds_everything_the_wheel_build_needs():
    """A new force-include in pyproject.toml must be copied into the hook repo too."""
    from freezegen.rules.options import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = set(wheel.get("packages", [])) | set(wheel.get("force-include", {}))
    assert needed <= set(HOOK_REPO_FILES)
