"""Golden analytic estimates of every example and every preset.

Pins the estimate JSON (the contract in docs/architecture.md) and each moment of the analytic
step, so that restructuring the estimator or the model families cannot move a byte unnoticed.
An intended change is refreshed with ``python -m pytest --update-golden`` and reviewed as a diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from freezegen.memory import estimate
from freezegen.memory.analytic import analyse
from freezegen.spec import load_spec, load_text
from freezegen.spec.presets import MODEL_PRESETS
from tests.conftest import Golden

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


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_example_estimates_match_golden(example: Path, golden: Golden) -> None:
    name = str(example.relative_to(REPO / "examples")).replace("/", "--").removesuffix(".yaml")
    golden.check_json(_record(load_spec(example)), GOLDEN / "examples" / f"{name}.json")


@pytest.mark.parametrize("preset", sorted(MODEL_PRESETS))
def test_preset_estimates_match_golden(preset: str, golden: Golden) -> None:
    result = load_text(f"version: 1\nmodel: {{preset: {preset}}}\n{PRESET_BODY}")
    assert result.spec is not None, result.diagnostics
    golden.check_json(_record(result.spec), GOLDEN / "presets" / f"{preset}.json")
