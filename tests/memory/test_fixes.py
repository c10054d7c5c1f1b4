"""The knob search behind FG201/FG202: cheapest first, semantics-preserving, honest when stuck."""

from __future__ import annotations

from freezegen.memory.analytic import estimate_analytic
from freezegen.memory.fixes import cheapest_fit, knob_effects
from freezegen.spec import load_text


def spec(text: str):
    result = load_text("version: 1\n" + text)
    assert result.spec is not None, result.diagnostics
    return result.spec


def test_cheapest_single_knob_is_sdpa_for_eager_attention():
    s = spec(
        "model: {preset: gpt2-medium, attention: eager}\n"
        "batch: {micro_batch_size: 16, seq_len: 512}\nhardware: {gpu: A100-40GB}\n"
    )
    assert estimate_analytic(s).fits is False
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits
    assert fix.change == "model.attention: sdpa"
    assert fix.spec.model.attention == "sdpa" and fix.spec.batch == s.batch


def test_smaller_micro_batches_keep_the_global_batch():
    s = spec(
        "model: {preset: gpt2-medium}\noptimizer: {implementation: fused}\n"
        "batch: {micro_batch_size: 32, grad_accum_steps: 2, seq_len: 512}\n"
        "hardware: {gpu: A100-40GB}\n"
    )
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits
    b0, b1 = s.batch, fix.spec.batch
    assert b1.micro_batch_size < b0.micro_batch_size
    assert b1.micro_batch_size * b1.grad_accum_steps == b0.micro_batch_size * b0.grad_accum_steps
    assert "same global batch" in fix.change


def test_maths_keeping_knobs_are_stacked_before_freezing():
    s = spec(
        "model: {preset: gpt2-large, attention: eager}\noptimizer: {implementation: fused}\n"
        "batch: {micro_batch_size: 16, seq_len: 1024}\nhardware: {gpu: V100-16GB}\n"
    )
    assert all(not f.fits for f in knob_effects(s))
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits and " + " in fix.change
    assert "freeze" not in fix.change and "bf16" not in fix.change
    assert fix.spec.checkpointing is not None


def test_freezing_only_when_model_states_alone_do_not_fit():
    # 1.5B parameters in fp32 AdamW need ~25 GB of weights, gradients and states: no
    # activation knob can fit that in 24 GB.
    s = spec(
        "model: {preset: gpt2-xl, attention: eager}\n"
        "batch: {micro_batch_size: 1, seq_len: 1024}\nhardware: {gpu: A10G}\n"
    )
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits and "freeze.layers: {first: " in fix.change
    assert fix.estimate.headroom_bytes >= 0.1 * fix.estimate.budget_bytes


def test_no_fix_when_nothing_fits():
    s = spec(
        "model: {preset: llama-2-13b}\nfreeze: {layers: '0-5'}\n"
        "batch: {micro_batch_size: 1, seq_len: 4096}\nhardware: {gpu: T4}\n"
    )
    assert cheapest_fit(s) is None


def test_knob_effects_never_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom freezegen.spec import load_text\nfrom freezegen.memory.fixes import "
        "knob_effects\ns = load_text('version: 1\\nmodel: {preset: gpt2}\\nbatch: "
        "{micro_batch_size: 8, seq_len: 512}\\n').spec\nknob_effects(s)\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


LORA_8B = (
    "model: {preset: llama-3-8b}\nprecision: bf16\nbatch: {micro_batch_size: 1, seq_len: 2048}\n"
    "adapter: {r: 64, alpha: 32, dropout: 0.05, targets: all-linear}\n"
)


def test_an_adapter_run_is_fixed_by_a_4bit_base_when_checkpointing_is_not_enough():
    s = spec(LORA_8B + "hardware: {gpu: RTX-4090}\n")
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits
    assert fix.spec.quantization is not None and fix.spec.quantization.weights == "nf4"
    assert "quantization.weights: nf4" in fix.change
    # The freeze section has no effect beside an adapter: it is never proposed.
    assert "freeze" not in fix.change


def test_adapter_settings_are_searched_when_quantizing_is_not_enough():
    s = spec(LORA_8B + "quantization: {weights: nf4}\nhardware: {memory_gib: 14}\n")
    fix = cheapest_fit(s)
    assert fix is not None and fix.fits
    a0, a1 = s.adapter, fix.spec.adapter
    changed = (a1.dropout != a0.dropout, a1.r != a0.r, a1.targets != a0.targets, a1.layers)
    assert any(changed), fix.change
    if a1.r != a0.r:
        assert f"adapter.r: 64 -> {a1.r}" in fix.change


def test_adapter_knobs_say_what_each_would_do():
    s = spec(LORA_8B + "hardware: {gpu: RTX-4090}\n")
    effects = {f.change: f.estimate.peak_bytes for f in knob_effects(s)}
    base = estimate_analytic(s).peak_bytes
    for change in (
        "adapter.dropout: 0",
        "quantization.weights: nf4",
        "adapter.r: 64 -> 32",
        "adapter.targets: [attention]",
        "adapter.layers: {last: 16}",
    ):
        assert effects[change] < base, change
    assert not any("freeze" in change for change in effects)


def test_an_int8_base_is_offered_nf4_by_the_fix_search():
    # nf4 stores a quarter of int8's bytes and keeps no matmul inputs alive
    from freezegen.memory.fixes import _quantized_base
    from freezegen.spec import load_text

    text = (
        "version: 1\nmodel: {preset: llama-3-8b}\nprecision: bf16\n"
        "adapter: {r: 16, targets: all-linear}\nquantization: {weights: %s}\n"
        "batch: {micro_batch_size: 1, seq_len: 2048}\nhardware: {gpu: RTX-4090}\n"
    )
    (variant,) = _quantized_base(load_text(text % "int8", "a.yaml").spec)
    assert variant.quantization.weights == "nf4"
    assert _quantized_base(load_text(text % "fp4", "a.yaml").spec) == []
