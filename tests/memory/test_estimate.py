from freezegen.memory import Breakdown, MemoryEstimate, estimate
from freezegen.memory.estimate import budget_bytes, overhead_bytes
from freezegen.spec.presets import GIB, GPUS

CONTRACT_KEYS = [
    "method",
    "peak_bytes",
    "budget_bytes",
    "overhead_bytes",
    "breakdown",
    "trainable_parameters",
    "total_parameters",
    "per_device",
]
BREAKDOWN_KEYS = ["parameters", "gradients", "optimizer_states", "activations", "temporaries"]


def test_json_matches_the_contract(make_spec):
    result = estimate(make_spec("gpt2", "hardware: {gpu: A100-80GB}"))
    data = result.to_json_dict()
    assert list(data) == CONTRACT_KEYS
    assert list(data["breakdown"]) == BREAKDOWN_KEYS
    assert data["method"] == "analytic"
    assert data["peak_bytes"] == sum(data["breakdown"].values())
    assert data["budget_bytes"] == GPUS["A100-80GB"].memory_bytes
    assert data["per_device"] is True


def test_budget_reserve_and_overhead(make_spec):
    spec = make_spec("gpt2", "hardware: {memory_gib: 24, reserve_gib: 2}")
    assert budget_bytes(spec) == 22 * GIB
    assert budget_bytes(make_spec("gpt2")) == 0
    assert overhead_bytes(spec, 10 * GIB) > overhead_bytes(spec, 1 * GIB) > 300 * 2**20


def test_fits_and_headroom():
    est = MemoryEstimate("analytic", 10, 100, 5, Breakdown(activations=10))
    assert est.required_bytes == 15 and est.headroom_bytes == 85 and est.fits
    assert MemoryEstimate("analytic", 10, 0, 5).fits is None
    assert MemoryEstimate("analytic", 100, 100, 5).fits is False
