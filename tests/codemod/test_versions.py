"""The versions a project pins, and the edits that depend on them (transformers' non-reentrant
checkpointing, torch.amp's autocast and GradScaler)."""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.codemod import CodemodOptions, codemod_file
from freezegen.codemod.options import HF
from freezegen.codemod.versions import admits_below, project_pins

HF_SCRIPT = """\
import torch
from transformers import GPT2Config, GPT2LMHeadModel

model = GPT2LMHeadModel(GPT2Config(n_layer=2))
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
for batch in loader:
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""
CHECKPOINTING = CodemodOptions(activation_checkpointing=HF)
FREEZE_AND_CHECKPOINTING = CodemodOptions(activation_checkpointing=HF, freeze=("*.h.0.*",))


@pytest.mark.parametrize(
    ("specifier", "old"),
    [
        (">=4.30,<5", True),
        (">=4.35", False),
        (">4.34", True),
        ("==4.40.0", False),
        ("==4.34.*", True),
        ("~=4.30", True),
        ("~=4.36.1", False),
        ("^4.30", True),
        ("^4.36", False),
        ("~4.30", True),
        ("<5", True),
        (">=4.36,!=4.37.0", False),
        ("<=4.40,>=4.36", False),
        ("", False),  # no version given: unknown, not old
        (">=4.30.0rc1", True),
        ("@ https://example.invalid/t.whl", False),  # not a specifier this reads: unknown
    ],
)
def test_admits_below(specifier: str, old: bool):
    assert admits_below(specifier, "4.35") is old


def _project(root: Path, files: dict[str, str]) -> Path:
    (root / ".git").mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    script = root / "src" / "train.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(HF_SCRIPT, encoding="utf-8")
    return script


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("requirements.txt", "torch>=2.4\n# pinned for the cluster\ntransformers==4.30.2\n", 3),
        (
            "requirements-dev.txt",
            "-r requirements.txt\ntransformers[torch] >=4.28; python_version>'3'\n",
            2,
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\ndependencies = [\n  "torch",\n  "transformers>=4.30",\n]\n',
            5,
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\n[project.optional-dependencies]\nhf = ["transformers~=4.31"]\n',
            4,
        ),
        (
            "pyproject.toml",
            '[tool.poetry.dependencies]\npython = "^3.10"\ntransformers = "^4.30"\n',
            3,
        ),
        (
            "pyproject.toml",
            '[tool.poetry.dependencies]\ntransformers = {version = "4.33.0", extras = ["torch"]}\n',
            2,
        ),
        ("setup.cfg", "[options]\ninstall_requires =\n    torch\n    transformers>=4.30\n", 4),
        (
            "setup.py",
            "from setuptools import setup\n"
            "setup(\n    install_requires=[\n        'transformers<4.35',\n    ],\n)\n",
            4,
        ),
    ],
)
def test_old_pins_are_found_with_their_line(tmp_path: Path, name: str, text: str, line: int):
    script = _project(tmp_path, {name: text})
    pin = project_pins(script).older_than("transformers", "4.35")
    assert pin is not None and pin.path == tmp_path / name and pin.line == line


def test_new_and_missing_pins_are_not_old(tmp_path: Path):
    script = _project(tmp_path, {"requirements.txt": "transformers>=4.40\n"})
    pins = project_pins(script)
    assert pins.older_than("transformers", "4.35") is None and pins.pinned("transformers")
    assert pins.older_than("torch", "2.3") is None and not pins.pinned("torch")


def test_the_walk_stops_at_the_repository_root(tmp_path: Path):
    (tmp_path / "requirements.txt").write_text("transformers==4.30\n", encoding="utf-8")
    script = _project(tmp_path / "repo", {})
    assert project_pins(script).pins == ()


def test_an_unreadable_pin_file_pins_nothing(tmp_path: Path):
    script = _project(tmp_path, {"pyproject.toml": "[project\n", "setup.py": "setup(\n"})
    (tmp_path / "requirements.txt").mkdir()  # a folder named like a file is no file
    assert project_pins(script).pins == ()


def test_old_transformers_with_a_freeze_is_refused_naming_the_pin(tmp_path: Path):
    script = _project(tmp_path, {"requirements.txt": "torch\ntransformers>=4.30\n"})
    result = codemod_file(script, FREEZE_AND_CHECKPOINTING)
    assert not result.changed
    (problem,) = result.problems
    assert problem.line == 5  # the optimizer: checkpointing goes above it
    assert f"{tmp_path / 'requirements.txt'}:2 pins transformers>=4.30" in problem.text
    assert "drops the gradients" in problem.text


def test_old_transformers_without_a_freeze_gets_the_cross_version_call(tmp_path: Path):
    script = _project(tmp_path, {"requirements.txt": "transformers>=4.30\n"})
    result = codemod_file(script, CHECKPOINTING)
    assert "model.gradient_checkpointing_enable()\n" in result.new_source
    assert "gradient_checkpointing_kwargs" not in result.new_source
    (note,) = result.notes
    assert "reentrant" in note.text and "requirements.txt:1" in note.text


def test_the_script_freezing_on_its_own_counts_as_a_freeze(tmp_path: Path):
    script = _project(tmp_path, {"requirements.txt": "transformers>=4.30\n"})
    text = script.read_text(encoding="utf-8")
    freeze = "model.transformer.wte.weight.requires_grad = False\n"
    script.write_text(text.replace("optimizer =", freeze + "optimizer =", 1), encoding="utf-8")
    (problem,) = codemod_file(script, CHECKPOINTING).problems
    assert "before 4.35" in problem.text


@pytest.mark.parametrize(("pin", "noted"), [("transformers>=4.40\n", False), ("", True)])
def test_new_or_unknown_transformers_gets_non_reentrant_checkpointing(
    tmp_path: Path, pin: str, noted: bool
):
    script = _project(tmp_path, {"requirements.txt": pin})
    result = codemod_file(script, FREEZE_AND_CHECKPOINTING)
    assert 'gradient_checkpointing_kwargs={"use_reentrant": False}' in result.new_source
    assert bool(result.notes) is noted


@pytest.mark.parametrize(
    ("pin", "precision", "reason"),
    [
        ("torch>=1.8,<2", "bf16", "torch.amp.autocast(device_type, ...) needs torch >= 1.10"),
        ("torch>=2.0", "fp16", "torch.amp.GradScaler(device) needs torch >= 2.3"),
    ],
)
def test_old_torch_refuses_the_amp_edits(tmp_path: Path, pin: str, precision: str, reason: str):
    script = _project(tmp_path, {"requirements.txt": pin + "\n"})
    (problem,) = codemod_file(script, CodemodOptions(precision=precision)).problems
    assert reason in problem.text and f"requirements.txt:1 pins {pin}" in problem.text


@pytest.mark.parametrize(("pin", "modernised"), [("torch>=1.8", False), ("torch>=2.0", True)])
def test_fg501_modernisation_follows_the_torch_pin(tmp_path: Path, pin: str, modernised: bool):
    script = _project(tmp_path, {"requirements.txt": pin + "\n"})
    text = script.read_text(encoding="utf-8").replace(
        "    loss = model(**batch).loss\n",
        "    with torch.cuda.amp.autocast(dtype=torch.bfloat16):\n"
        "        loss = model(**batch).loss\n",
    )
    script.write_text(text, encoding="utf-8")
    result = codemod_file(script, CodemodOptions(freeze=("*.h.0.*",)))
    assert ("torch.amp.autocast(" in result.new_source) is modernised
    assert ("torch.cuda.amp.autocast(" in result.new_source) is not modernised
    notes = [n.text for n in result.notes]
    assert bool(notes) is not modernised
    assert all(f"requirements.txt:1 pins {pin}" in n and "torch >= 1.10" in n for n in notes)


def test_old_torch_refuses_the_explicit_non_reentrant_checkpoint_wrapper(tmp_path: Path):
    script = _project(tmp_path, {"requirements.txt": "torch>=1.10\n"})
    options = CodemodOptions(activation_checkpointing="transformer.h")
    (problem,) = codemod_file(script, options).problems
    assert problem.line == 5 and "requirements.txt:1 pins torch>=1.10" in problem.text
    assert "checkpoint_wrapper(..., checkpoint_impl=CheckpointImpl.NO_REENTRANT)" in problem.text
    (tmp_path / "requirements.txt").write_text("torch>=2.0\n", encoding="utf-8")
    new = codemod_file(script, options).new_source
    assert "checkpoint_wrapper(block, checkpoint_impl=CheckpointImpl.NO_REENTRANT)" in new
