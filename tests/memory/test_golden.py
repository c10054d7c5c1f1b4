"""Golden analytic estimates of every example and every preset.

Pins the estimate JSON (the contract in docs/architecture.md) and each moment of the analytic
step, so that restructuring the estimator or the model families cannot move a byte unnoticed.
An intended change is refreshed with ``python -m pytest --update-golden`` and reviewed as a diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freezegen.memory import estimate
from freezegen.memory.analytic import analyse
from freezegen.spec import load_spec, load_text
from freezegen.spec.presets import MODEL_PRESETS

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = sorted(REPO.glob("examples/**/*freezegen.yaml"))

PRESET_BODY = """
precision: bf16
freeze: {embeddings: true, layers: {first: 2}}
activation_checkpointing: {layers: every-2}
batch: {micro_batch_size: 2, seq_len: 512}
hardware: {gpu: H100-80GB}
"""


def _record(spec) -> dict:
    return {
        "analytic": estimate(spec, "analytic").to_json_dict(),
        "moments": {m.name: m.breakdown.total for m in analyse(spec).moments},
    }


def _compare(record: dict, golden: Path, update: bool) -> None:
    if update:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(record, indent=1) + "\n")
        return
    assert golden.exists(), f"{golden} is missing: run pytest --update-golden and review it"
    assert record == json.loads(golden.read_text()), f"{golden.name} changed"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_example_estimates_match_golden(example: Path, update_golden: bool) -> None:
    name = str(example.relative_to(REPO / "examples")).replace("/", "--").removesuffix(".yaml")
    _compare(_record(load_spec(example)), GOLDEN / "examples" / f"{name}.json", update_golden)


@pytest.mark.parametrize("preset", sorted(MODEL_PRESETS))
def test_preset_estimates_match_golden(preset: str, update_golden: bool) -> None:
    result = load_text(f"version: 1\nmodel: {{preset: {preset}}}\n{PRESET_BODY}")
    assert result.spec is not None, result.diagnostics
    _compare(_record(result.spec), GOLDEN / "presets" / f"{preset}.json", update_golden)
