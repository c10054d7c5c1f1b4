import sys
import types

import pytest
import torch

from freezegen.memory import EstimateError, estimate
from freezegen.spec import load_text


def factory_spec(path: str, extra: str = ""):
    text = (
        f"version: 1\nmodel: {{factory: '{path}'}}\n"
        f"batch: {{micro_batch_size: 2, seq_len: 16}}\n{extra}"
    )
    return load_text(text).spec


@pytest.fixture
def factories(monkeypatch):
    mod = types.ModuleType("fg_test_factories")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(100, 32)
            self.layers = torch.nn.ModuleList(torch.nn.Linear(32, 32) for _ in range(3))
            self.out = torch.nn.Linear(32, 100)

        def forward(self, ids):
            h = self.emb(ids)
            for layer in self.layers:
                h = torch.relu(layer(h))
            return self.out(h)

    def broken():
        raise RuntimeError("no weights here")

    mod.tiny = Tiny
    mod.broken = broken
    mod.not_a_module = lambda: 42
    monkeypatch.setitem(sys.modules, "fg_test_factories", mod)
    return mod


def test_factory_model_traces_with_frozen_layers(factories):
    full = estimate(factory_spec("fg_test_factories:tiny"), "traced")
    frozen = estimate(
        factory_spec("fg_test_factories:tiny", "freeze: {embeddings: true, layers: {first: 2}}"),
        "traced",
    )
    assert full.method == "traced"
    assert full.trainable_parameters == full.total_parameters == 100 * 32 + 3 * 32 * 33 + 3300
    assert frozen.trainable_parameters == full.total_parameters - 3200 - 2 * 32 * 33
    assert frozen.peak_bytes < full.peak_bytes
    assert full.peak_bytes == full.breakdown.total


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("fg_test_factories:broken", "raised RuntimeError: no weights here"),
        ("fg_test_factories:not_a_module", "returned int, not a torch.nn.Module"),
        ("fg_test_factories:missing", "cannot import"),
        ("fg_no_such_module:build", "cannot import"),
    ],
)
def test_bad_factories_get_a_clear_error(factories, name, message):
    with pytest.raises(EstimateError, match=message):
        estimate(factory_spec(name), "traced")


def test_fsdp_traces_rank_zero_and_leaves_no_process_group(make_spec):
    import torch.distributed as dist

    body = "batch: {micro_batch_size: 1, seq_len: 64}"
    fsdp = "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 8, memory_gib: 80}\n"
    single = estimate(make_spec("llama", body), "traced")
    sharded = estimate(make_spec("llama", fsdp + body), "traced")
    assert not dist.is_initialized()
    # Parameters and optimizer state live as 1/8 shards; the peak adds the gathered units.
    assert sharded.breakdown.optimizer_states == pytest.approx(
        single.breakdown.optimizer_states / 8, rel=0.02
    )
    assert sharded.peak_bytes < single.peak_bytes / 2
    assert sharded.total_parameters == single.total_parameters
    assert sharded.trainable_parameters == single.trainable_parameters


def test_fsdp_refuses_an_initialised_process_group(make_spec):
    import torch.distributed as dist
    from torch.testing._internal.distributed.fake_pg import FakeStore

    spec = make_spec(
        "gpt2", "distributed: {strategy: fsdp}\nhardware: {gpu: H200, gpus_per_node: 2}"
    )
    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=2)
    try:
        with pytest.raises(EstimateError, match="already initialised"):
            estimate(spec, "traced")
    finally:
        dist.destroy_process_group()


def test_second_step_includes_optimizer_state(make_spec):
    est = estimate(make_spec("llama", "batch: {micro_batch_size: 1, seq_len: 16}"), "traced")
    assert est.breakdown.optimizer_states == pytest.approx(2 * est.breakdown.parameters, rel=0.01)
    assert est.trainable_parameters == est.total_parameters


def test_allocates_nothing_real(make_spec):
    spec = make_spec("llama", "batch: {micro_batch_size: 64, seq_len: 512}")
    est = estimate(spec, "traced")
    assert est.peak_bytes > 3 * 2**30  # far more than this test process holds


def test_dropout_saves_cuda_bool_masks(make_spec):
    # CUDA's native_dropout keeps a one-byte mask per element (CPU would keep a noise tensor in
    # the input's dtype): two residual dropouts per block plus the embedding dropout.
    body = "batch: {micro_batch_size: 8, seq_len: 256}"
    on = estimate(make_spec("gpt2", body, "dropout: 0.1"), "traced")
    off = estimate(make_spec("gpt2", body, "dropout: 0.0"), "traced")
    masks = (2 * 4 + 1) * 8 * 256 * 256
    assert on.breakdown.activations - off.breakdown.activations == masks


def test_bf16_pure_converts_fake_parameters(make_spec):
    # Module.to() cannot swap fake parameters; the conversion must still halve them.
    body = "batch: {micro_batch_size: 1, seq_len: 16}"
    fp32 = estimate(make_spec("llama", body), "traced")
    pure = estimate(make_spec("llama", "precision: bf16-pure\n" + body), "traced")
    assert pure.breakdown.parameters == pytest.approx(fp32.breakdown.parameters / 2, rel=0.01)


def test_checkpoint_recompute_matches_the_forward(make_spec):
    # The recomputation runs in backward, outside the forward's CUDA bridging; it must draw the
    # same (bool) dropout masks and run the same fp32 ops, or torch.utils.checkpoint rejects the
    # recomputed tensors (CheckpointError, which the estimate would raise).
    body = "precision: bf16\nbatch: {micro_batch_size: 8, seq_len: 256}"
    checkpointed = estimate(make_spec("gpt2", f"activation_checkpointing: true\n{body}"), "traced")
    plain = estimate(make_spec("gpt2", body), "traced")
    # ... and the recomputed run keeps a fraction of the activations of the plain one.
    assert checkpointed.breakdown.activations < plain.breakdown.activations / 4
    assert checkpointed.peak_bytes < plain.peak_bytes


def saved_for_backward(spec):
    """Shapes of the tensors one traced forward of the spec's model saves for backward."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from freezegen.memory.traced import (
        _CudaBehaviour,
        _one_sequence_per_row,
        _to_bf16,
        build_model,
    )

    shapes = []

    def keep(t):
        shapes.append(tuple(t.shape))
        return t

    with _one_sequence_per_row(), FakeTensorMode(), torch.device("cpu"):
        model, _ = build_model(spec)
        model.train()
        if spec.precision == "bf16-pure":
            _to_bf16(model)
        ids = torch.ones(spec.batch.micro_batch_size, spec.batch.seq_len, dtype=torch.long)
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t), _CudaBehaviour(False):
            model(input_ids=ids, labels=ids, use_cache=False)
    return shapes


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_sdpa_gets_no_mask_and_grouped_keys_values(make_spec, family):
    # A GPU run with one unpadded sequence per row builds no (b, 1, s, s) mask and gives sdpa
    # K/V at their own (grouped) size (conftest llama: 8 heads of 32, 2 key/value heads).
    b, s = 2, 48
    spec = make_spec(
        family, f"precision: bf16-pure\nbatch: {{micro_batch_size: {b}, seq_len: {s}}}"
    )
    shapes = saved_for_backward(spec)
    assert (b, 1, s, s) not in shapes
    layers = 4
    if family == "llama":
        assert shapes.count((b, 2, s, 32)) == 2 * layers  # k and v
        assert shapes.count((b, 8, s, 32)) == 2 * layers  # q and the output


def test_fp32_grouped_attention_runs_the_math_kernel(make_spec):
    # fp32 GQA has no fused CUDA kernel (flash needs fp16/bf16, memory-efficient equal head
    # counts): the math kernel keeps K/V repeated to all heads and the probabilities.
    b, s = 2, 48
    shapes = saved_for_backward(
        make_spec("llama", f"batch: {{micro_batch_size: {b}, seq_len: {s}}}")
    )
    assert (b, 1, s, s) not in shapes
    assert (b, 2, s, 32) not in shapes
    assert shapes.count((b, 8, s, s)) == 4  # the probabilities, one per block


def test_an_adapter_on_a_model_of_no_known_family_is_refused(tmp_path):
    import json

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "opt",
                "vocab_size": 64,
                "max_position_embeddings": 32,
                "hidden_size": 32,
                "word_embed_proj_dim": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "ffn_dim": 64,
            }
        )
    )
    result = load_text(
        f"version: 1\nmodel: {{hf_config: {config}}}\nadapter: {{r: 4}}\n"
        "batch: {micro_batch_size: 1, seq_len: 16}\n",
        str(tmp_path / "freezegen.yaml"),
    )
    assert result.ok, result.diagnostics
    with pytest.raises(EstimateError, match="adapter needs a model of a family freezegen knows"):
        estimate(result.spec, "traced")
