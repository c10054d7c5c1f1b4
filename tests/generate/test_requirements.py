"""The library floors a generated script checks before importing anything beyond torch: which
libraries a spec needs, that pyproject's extras declare the same floors, and that a script run
beside a too-old or missing library stops with what to install, not a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from freezegen.generate import render_script
from freezegen.generate.requirements import (
    PEFT_UNDER_TRANSFORMERS_5,
    Requirement,
    requirements,
    version_key,
)
from freezegen.spec import load_spec
from tests.generate.conftest import REPO, tiny_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    ("version", "key"),
    [
        ("2.13.0+cpu", (2, 13, 0)),
        ("0.19", (0, 19)),
        ("0.19.0.dev0", (0, 19, 0)),
        ("5.0.0rc1", (5, 0, 0)),
        ("1.2.post3", (1, 2)),
        ("", ()),
    ],
)
def test_version_key_reads_the_numeric_release(version: str, key: tuple[int, ...]) -> None:
    assert version_key(version) == key


def test_version_keys_order_releases_numerically() -> None:
    assert version_key("0.9") < version_key("0.19") < version_key("0.19.1") < version_key("0.20")


def _needs(tmp_path: Path, family: str = "llama", **sections: object) -> dict[str, str]:
    spec = load_spec(tiny_spec(tmp_path, family, **sections))
    return {
        r.distribution + ("" if r.given is None else f" given {r.given[0]}>={r.given[1]}"): (
            r.minimum
        )
        for r in requirements(spec)
    }


def test_a_hugging_face_model_needs_transformers_only(tmp_path: Path) -> None:
    assert _needs(tmp_path) == {"transformers": "4.40"}


def test_lora_needs_peft_and_a_newer_one_under_transformers_5(tmp_path: Path) -> None:
    needs = _needs(tmp_path, adapter={"kind": "lora", "r": 4, "alpha": 8})
    assert needs == {"peft": "0.13", "peft given transformers>=5": "0.18", "transformers": "4.40"}


def test_a_bitsandbytes_base_needs_transformers_with_the_dtype_keyword(tmp_path: Path) -> None:
    needs = _needs(
        tmp_path,
        adapter={"kind": "lora", "r": 4, "alpha": 8},
        quantization={"weights": "nf4", "compute": "bf16"},
    )
    assert needs == {
        "bitsandbytes": "0.50",
        "peft": "0.13",
        "peft given transformers>=5": "0.18",
        "transformers": "4.56",
    }


def test_lora_over_torchao_needs_the_strictest_floors_once(tmp_path: Path) -> None:
    needs = _needs(
        tmp_path,
        adapter={"kind": "lora", "r": 4, "alpha": 8},
        quantization={"weights": "int8", "library": "torchao"},
    )
    # peft 0.19 covers the floor under transformers 5, which is then not listed.
    assert needs == {"peft": "0.19", "torchao": "0.16", "transformers": "4.57"}


def test_files_and_tensorboard_need_their_libraries(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hello"}\n')
    needs = _needs(
        tmp_path,
        data={"source": "jsonl", "path": "train.jsonl", "tokenizer": "tok"},
        logging={"tensorboard": True},
    )
    assert needs == {"datasets": "2.19", "tensorboard": "2.14", "transformers": "4.40"}


def _extras() -> dict[str, dict[str, str]]:
    """pyproject's extras: {extra: {distribution: floor}}."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras: dict[str, dict[str, str]] = {}
    for extra, pins in project["optional-dependencies"].items():
        for pin in pins:
            name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", pin).groups()
            extras.setdefault(extra, {})[name] = floor
    return extras


def _all_requirements() -> list[Requirement]:
    import freezegen.generate.requirements as module

    return [v for v in vars(module).values() if isinstance(v, Requirement)]


def test_each_extra_declares_the_floors_the_scripts_check() -> None:
    extras = _extras()
    floors: dict[tuple[str, str], str] = {}
    for r in _all_requirements():
        if r.given is None:
            key = (r.extra, r.distribution)
            if key not in floors or version_key(r.minimum) > version_key(floors[key]):
                floors[key] = r.minimum
    for (extra, distribution), minimum in floors.items():
        assert extras[extra].get(distribution) == minimum, (extra, distribution)
    # The dev extra, which the tests run with, is at least as new as every floor.
    for (_, distribution), minimum in floors.items():
        assert version_key(extras["dev"][distribution]) >= version_key(minimum), distribution


def test_the_conditional_floor_is_declared_by_no_extra_and_holds_under_the_dev_pins() -> None:
    # pip resolves the newest peft anyway; the script checks the pair at run time.
    assert PEFT_UNDER_TRANSFORMERS_5.given == ("transformers", "5")
    assert version_key(_extras()["dev"]["peft"]) >= version_key(PEFT_UNDER_TRANSFORMERS_5.minimum)


def _fake_distribution(site: Path, name: str, version: str) -> None:
    """A dist-info folder that importlib.metadata finds before the installed one."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.mark.slow
def test_a_script_beside_a_too_old_library_stops_before_importing_it(tmp_path: Path) -> None:
    spec_path = tiny_spec(
        tmp_path,
        "llama",
        adapter={"kind": "lora", "r": 4, "alpha": 8},
        quantization={"weights": "int8", "library": "torchao"},
    )
    script = tmp_path / "train.py"
    script.write_text(render_script(load_spec(spec_path), spec_path, tmp_path))
    site = tmp_path / "site"
    _fake_distribution(site, "peft", "0.18.1")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "this script needs newer or missing libraries" in done.stderr
    assert "peft>=0.19 (LoRA over torchao's int8 weights" in done.stderr
    assert "found 0.18.1; pip install 'freezegen[torchao]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_a_script_without_a_needed_library_says_so(tmp_path: Path) -> None:
    spec_path = tiny_spec(tmp_path, "llama", logging={"tensorboard": True})
    script = tmp_path / "train.py"
    script.write_text(render_script(load_spec(spec_path), spec_path, tmp_path))
    # A module named like the distribution's import but no distribution: metadata finds none.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "from importlib import metadata\n"
        "real = metadata.version\n"
        "def version(name):\n"
        "    if name == 'tensorboard':\n"
        "        raise metadata.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "metadata.version = version\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "tensorboard>=2.14 (logging.tensorboard): not installed" in done.stderr
    assert "Traceback" not in done.stderr
