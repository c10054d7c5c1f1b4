"""The analytic estimator against the traced one, at reduced dimensions.

Target: within 5% of the traced peak. Cases that do not meet it yet are marked xfail with the
measured error and the term responsible, never by loosening the tolerance.
"""

import pytest

from freezegen.memory import estimate

TOLERANCE = 0.05
B = "batch: {micro_batch_size: 8, seq_len: 256}"


def xfail(reason):
    return pytest.mark.xfail(reason=reason, strict=True)


CASES = [
    pytest.param("gpt2", B, "", id="gpt2-fp32-sdpa"),
    pytest.param("gpt2", B, "attention: eager", id="gpt2-fp32-eager"),
    pytest.param(
        "gpt2",
        "precision: bf16\n" + B,
        "",
        id="gpt2-bf16",
        marks=xfail("+9.8%: autocast block coefficients over-count saved low-precision casts"),
    ),
    pytest.param(
        "gpt2", "freeze: {embeddings: true, layers: {first: 2}}\n" + B, "", id="gpt2-freeze-first"
    ),
    pytest.param(
        "gpt2",
        "optimizer: {name: sgd}\nbatch: {micro_batch_size: 1, seq_len: 64}",
        "",
        id="gpt2-sgd-small-batch",
    ),
    pytest.param(
        "gpt2", "batch: {micro_batch_size: 1, seq_len: 64}", "", id="gpt2-adamw-optimizer-bound"
    ),
    pytest.param("bert", B, "", id="bert-fp32-sdpa"),
    pytest.param("bert", B, "head: sequence-classification", id="bert-seq-cls"),
    pytest.param("llama", B, "", id="llama-fp32-sdpa"),
    pytest.param(
        "llama",
        "precision: bf16\n" + B,
        "",
        id="llama-bf16",
        marks=xfail("+12.7%: autocast block coefficients over-count saved low-precision casts"),
    ),
    pytest.param(
        "llama", "freeze: {embeddings: true, layers: {first: 2}}\n" + B, "", id="llama-freeze-first"
    ),
    pytest.param(
        "llama",
        "activation_checkpointing: true\n" + B,
        "",
        id="llama-ckpt-all",
        marks=xfail(
            "+32%: the recompute term counts a whole block plus the loss "
            "gradients at once; traced shows they do not coincide"
        ),
    ),
    pytest.param(
        "llama",
        "batch: {micro_batch_size: 1, seq_len: 32}\noptimizer: {implementation: fused}",
        "",
        id="llama-fused",
    ),
    pytest.param("qwen2", B, "", id="qwen2-fp32-tied"),
]


@pytest.mark.parametrize(("family", "body", "model_extra"), CASES)
def test_analytic_within_tolerance_of_traced(make_spec, family, body, model_extra):
    spec = make_spec(family, body, model_extra)
    analytic = estimate(spec, "analytic")
    traced = estimate(spec, "traced")
    assert analytic.total_parameters == traced.total_parameters
    assert analytic.trainable_parameters == traced.trainable_parameters
    error = analytic.peak_bytes / traced.peak_bytes - 1
    assert abs(error) <= TOLERANCE, (
        f"analytic {analytic.peak_bytes:,} vs traced {traced.peak_bytes:,}: {error:+.1%}"
    )
