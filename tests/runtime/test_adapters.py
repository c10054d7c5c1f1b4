"""The linears an adapter selection names on a built model (freezegen/runtime/adapters.py), for a
model of no known family: kinds guessed from module names, names matched at dot boundaries as
peft matches them, only inside the selected blocks. tests/arch/test_adapters.py checks the rule
against the torch-free plan and peft for every family."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from freezegen.runtime.adapters import (  # noqa: E402
    adapter_targets,
    is_linear,
    linear_features,
    trained_base_parameters,
)
from freezegen.runtime.names import name_matches  # noqa: E402


class Conv1D(nn.Module):
    """Stands in for transformers' Conv1D: a weight stored (in, out)."""

    def __init__(self, nx: int, nf: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(8, 4)
        self.o_proj = nn.Linear(4, 8)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.self_attn = Attention()
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(8, 16)
        self.mlp.down_proj = nn.Linear(16, 8)


class Toy(nn.Module):
    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.layers = nn.ModuleList(Block() for _ in range(depth))
        self.lm_head = nn.Linear(8, 10)


def _names(blocks, *suffixes: str) -> list[str]:
    return sorted(f"layers.{b}.{s}" for b in blocks for s in suffixes)


ALL = ("self_attn.q_proj", "self_attn.o_proj", "mlp.c_fc", "mlp.down_proj")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"targets": ["attention"], "blocks": None}, _names(range(3), *ALL[:2])),
        ({"targets": ["mlp"], "blocks": [1]}, _names([1], *ALL[2:])),
        (
            {"targets": ["q_proj", "mlp.down_proj"], "blocks": None},
            _names(range(3), ALL[0], ALL[3]),
        ),
        ({"targets": "all-linear", "blocks": {"last": 2}}, _names([1, 2], *ALL)),
        ({"targets": "all-linear", "blocks": {"every": 2}}, _names([0, 2], *ALL)),
        # "proj" is no module's whole last name; norms are no linears; the head is outside blocks
        ({"targets": ["proj", "norm", "lm_head"], "blocks": None}, []),
        ({"targets": ["attention"], "blocks": []}, []),
    ],
)
def test_adapter_targets_name_block_linears(rules: dict, expected: list[str]) -> None:
    assert adapter_targets(Toy(), rules) == expected


def test_known_kinds_come_from_the_family_module_names() -> None:
    kinds = {"attention": ["self_attn"], "feedforward": ["mlp"], "norm": ["norm"]}
    rules = {"targets": ["feedforward"], "blocks": [0]}
    assert adapter_targets(Toy(), rules, kinds) == _names([0], *ALL[2:])
    # with known kinds, "mlp" is no kind: it is a module name, and the mlp holds no linear
    assert adapter_targets(Toy(), {"targets": ["mlp"], "blocks": [0]}, kinds) == []


def test_conv1d_is_a_linear_with_its_weight_stored_in_by_out() -> None:
    conv, linear = Conv1D(8, 16), nn.Linear(8, 16)
    assert is_linear(conv) and is_linear(linear)
    assert linear_features(conv) == linear_features(linear) == (8, 16)
    assert not is_linear(nn.LayerNorm(8)) and not is_linear(nn.Embedding(4, 8))


def test_names_match_at_dot_boundaries() -> None:
    assert name_matches("a.b.q_proj", "q_proj")
    assert name_matches("a.b.q_proj", "b.q_proj")
    assert name_matches("q_proj", "q_proj")
    assert not name_matches("a.b.qq_proj", "q_proj")
    assert not name_matches("a.b.q_proj.x", "q_proj")


def test_trained_base_parameters_are_the_glob_matches() -> None:
    model = Toy(depth=1)
    assert trained_base_parameters(model, ["lm_head.*", "*.norm.bias"]) == [
        "layers.0.norm.bias",
        "lm_head.bias",
        "lm_head.weight",
    ]
    assert trained_base_parameters(model, []) == []
