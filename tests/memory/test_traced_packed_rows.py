"""The traced estimate of packed rows: their position_ids restart, so transformers gives every
block a (b, 1, s, s) mask (and sdpa no grouped K/V); the trace models it as the script runs it."""

from __future__ import annotations

from pathlib import Path

from freezegen.memory import estimate
from freezegen.spec import load_spec
from tests.generate.conftest import tiny_spec

FILES = {"source": "jsonl", "path": "t.jsonl", "tokenizer": "tok"}


def test_packed_rows_cost_their_mask_in_the_trace(tmp_path: Path) -> None:
    peaks = {}
    for packing in (False, True):
        path = tiny_spec(
            tmp_path / str(packing),
            "llama",
            model={"hf_config": "./config.json", "attention": "sdpa"},
            precision="bf16",
            data={**FILES, "packing": packing},
            batch={"micro_batch_size": 4, "grad_accum_steps": 1, "seq_len": 32},
        )
        peaks[packing] = estimate(load_spec(path), "traced").peak_bytes
    # bf16: one unpadded sequence per row runs is_causal, grouped K/V at their own size; a
    # packed row's mask turns GQA off (K/V repeated to every head) and is kept itself.
    assert peaks[True] > peaks[False]
