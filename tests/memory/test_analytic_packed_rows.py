"""The analytic estimate of packed rows (data.packing): what transformers builds for them, by
attention implementation, reaches the estimate, ``--explain`` and lint's budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from freezegen.lint import lint_paths
from freezegen.memory import estimate
from freezegen.memory.analytic import analyse
from freezegen.memory.explain import explain
from freezegen.spec import load_text
from tests.memory.conftest import CONFIGS

ROOT = Path(__file__).resolve().parents[2]
PACKED = "data: {source: jsonl, path: t.jsonl, tokenizer: tok, packing: true}\n"
MASK = "attention mask (packed rows"


def _spec_text(config: Path, body: str, attention: str, packed: bool) -> str:
    return f"version: 1\nmodel: {{hf_config: {config}, attention: {attention}}}\n{body}" + (
        PACKED if packed else ""
    )


def _spec(tmp_path: Path, body: str, attention: str, packed: bool):
    config = tmp_path / "llama.json"
    config.write_text(json.dumps(CONFIGS["llama"]), encoding="utf-8")
    result = load_text(_spec_text(config, body, attention, packed))
    assert result.spec is not None, result.diagnostics
    return result.spec


def _labels(spec) -> list[str]:
    return [p.label for p in analyse(spec).peak.activations]


BF16 = "precision: bf16\nbatch: {micro_batch_size: 4, seq_len: 128}\n"


def test_eager_attention_keeps_no_more_for_packed_rows(tmp_path: Path) -> None:
    # Eager builds the same (b, 1, s, s) mask for packed and unpacked rows and saves none of
    # it: the trace measures no difference, and the analytic model adds no term.
    packed, unpacked = (_spec(tmp_path, BF16, "eager", p) for p in (True, False))
    assert estimate(packed, "traced").peak_bytes == estimate(unpacked, "traced").peak_bytes
    assert estimate(packed, "analytic").peak_bytes == estimate(unpacked, "analytic").peak_bytes
    assert not any(MASK in label for label in _labels(packed))
    (note,) = explain(packed).assumptions
    assert "eager attention builds the same" in note


def test_sdpa_keeps_each_blocks_mask_for_packed_rows(tmp_path: Path) -> None:
    packed, unpacked = (_spec(tmp_path, BF16, "sdpa", p) for p in (True, False))
    masks = [label for label in _labels(packed) if MASK in label]
    assert masks, _labels(packed)
    assert not any(MASK in label for label in _labels(unpacked))
    grown = estimate(packed, "analytic").peak_bytes - estimate(unpacked, "analytic").peak_bytes
    traced = estimate(packed, "traced").peak_bytes - estimate(unpacked, "traced").peak_bytes
    assert grown == traced > 0
    (note,) = explain(packed).assumptions
    assert "(b, 1, s, s) mask" in note and "grouped K/V repeated" in note


def test_lint_budgets_the_packed_rows(tmp_path: Path) -> None:
    # 1.2 GiB holds the unpacked run (1.15 GiB with overhead) but not the packed one (1.24).
    shutil.copytree(ROOT / "examples" / "data-files" / "tok", tmp_path / "tok")
    (tmp_path / "t.jsonl").write_text('{"text": "a b c"}\n', encoding="utf-8")
    config = tmp_path / "llama.json"
    config.write_text(json.dumps(CONFIGS["llama"]), encoding="utf-8")
    body = (
        "precision: bf16\nbatch: {micro_batch_size: 8, seq_len: 1024}\n"
        "hardware: {gpus_per_node: 1, memory_gib: 1.2}\n"
    )
    over = {}
    for packed in (False, True):
        path = tmp_path / f"{packed}.yaml"
        path.write_text(_spec_text(config, body, "sdpa", packed), encoding="utf-8")
        report = lint_paths([path])
        over[packed] = [d for d in report.diagnostics if d.code == "FG201"]
    assert not over[False]
    assert len(over[True]) == 1
