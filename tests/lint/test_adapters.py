"""Lint over adapter and quantization sections: the rules read one adapter-aware plan
(freezegen/arch/training.py), so the older freeze rules see what really trains."""

from __future__ import annotations

from freezegen.lint import lint_text

BASE = """\
version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
"""


def _found(extra: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for d in lint_text(BASE + extra):
        found.setdefault(d.code, []).append(d)
    return found


def test_a_target_miss_names_the_models_linears_where_it_is_written() -> None:
    found = _found("adapter: {targets: [c_attn, q_proj]}\n")
    (miss,) = found["FG115"]
    assert (miss.line, miss.col, miss.severity) == (4, 29, "warning")
    assert "'q_proj' matches no linear" in miss.message
    assert miss.fix == "this model's are c_attn, c_proj, c_fc (kinds attention, mlp)"
    assert "FG104" not in found


def test_an_adapter_on_no_linear_is_an_error_and_leaves_nothing_to_train() -> None:
    found = _found("adapter: {targets: [q_proj]}\n")
    assert sorted(d.severity for d in found["FG115"]) == ["error", "warning"]
    (nothing,) = found["FG104"]
    assert nothing.line == 4 and "adapter adapts no linear" in nothing.message


def test_with_an_adapter_the_schedule_thaws_the_frozen_base() -> None:
    # The whole base is frozen under an adapter, so thawing blocks thaws something (no FG107),
    # and blocks holding adapters are not frozen blocks (no FG105 for checkpointing them).
    spec = (
        "adapter: {targets: [attention], layers: {last: 6}}\n"
        "freeze:\n  schedule:\n    - {at_step: 10, unfreeze: {layers: {last: 2}}}\n"
        'activation_checkpointing: {layers: "6-11"}\n'
        "train: {max_steps: 100}\n"
    )
    found = _found(spec)
    assert not {"FG104", "FG105", "FG107", "FG117", "FG119"} & set(found)


def test_quantized_base_without_adapter_points_at_quantization() -> None:
    found = _found(
        'freeze: {embeddings: true, layers: "0-11", patterns: ["transformer.ln_f.*"]}\n'
        "quantization: {weights: int8}\n"
    )
    (nothing,) = found["FG104"]
    assert nothing.line == 5 and "add an adapter" in (nothing.fix or "")


def test_weights_none_quantizes_nothing_and_says_nothing() -> None:
    found = _found("quantization: {weights: none}\n")
    assert not {"FG117", "FG118", "FG120"} & set(found)


def test_over_budget_points_a_quantized_base_to_fsdp_over_a_full_precision_one() -> None:
    # FSDP2 cannot shard a quantized base (FG122): more GPUs means a full-precision base.
    spec = (
        "version: 1\nmodel: {preset: llama-3.1-70b}\nbatch: {micro_batch_size: 1, seq_len: 512}\n"
        "precision: fp16\nadapter: {r: 8, targets: [attention]}\n"
        "quantization: {weights: nf4, compute: fp16}\nhardware: {gpu: T4}\n"
    )
    (over,) = [d for d in lint_text(spec) if d.code == "FG201"]
    assert "distributed.strategy: fsdp over a full-precision base" in (over.fix or "")
