from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent

# hardware: {gpu: auto} reads the machine's GPU; the suite answers the same on every machine
# (tests that want a GPU there set this themselves).
os.environ["FREEZEGEN_LOCAL_GPU"] = "none"

# Property tests draw the same examples on every run, so a red CI run is never a flake; set
# HYPOTHESIS_PROFILE=explore to hunt with fresh random examples (and a database to replay them).
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite expected-output files from the current behaviour",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@dataclass(frozen=True)
class Golden:
    """Compare output with a golden file, or rewrite the file under ``--update-golden``."""

    update: bool

    def check_text(self, text: str, path: Path) -> None:
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            return
        where = path.relative_to(REPO)
        assert path.exists(), f"{where} is missing: run pytest --update-golden and review it"
        assert text == path.read_text(), (
            f"the output differs from {where}; if the change is intended, refresh it with "
            "pytest --update-golden and review the diff"
        )

    def check_json(self, record: Any, path: Path) -> None:
        self.check_text(json.dumps(record, indent=1) + "\n", path)


@pytest.fixture
def golden(update_golden: bool) -> Golden:
    return Golden(update_golden)


@pytest.fixture
def repo() -> Path:
    return REPO
