"""plan_freeze on small gpt2 / llama tables, and once against a real transformers model."""

from __future__ import annotations

import pytest

from freezegen.arch.freeze import Miss, plan_freeze
from freezegen.arch.params import parameter_table
from freezegen.spec.models import FreezeSpec
from freezegen.spec.presets import Architecture

LAYERS = 4
GPT2 = Architecture("gpt2", "gpt2", LAYERS, 32, 4, 128, 100, 64)  # tied head
LLAMA = Architecture(
    "llama", "llama", LAYERS, 32, 4, 48, 100, 64, num_kv_heads=2, tie_word_embeddings=False
)


def plan(arch: Architecture, **freeze):
    params = parameter_table(arch)
    return plan_freeze(FreezeSpec.model_validate(freeze), params, arch.num_layers)


def names(arch: Architecture, pred=lambda p: True) -> set[str]:
    return {p.name for p in parameter_table(arch) if pred(p)}


def in_blocks(*blocks: int):
    return lambda p: p.block in blocks


def test_empty_spec_freezes_nothing():
    p = plan(GPT2)
    assert p.frozen == frozenset()
    assert p.frozen_blocks == frozenset()
    assert p.first_trainable_block == 0
    assert p.misses == [] and p.out_of_range == []
    assert [q.name for q in p.trainable] == [q.name for q in parameter_table(GPT2)]


def test_embeddings_tied_head_follows():
    p = plan(GPT2, embeddings=True)
    assert p.frozen == {"transformer.wte.weight", "transformer.wpe.weight"}
    # Tied: the output head is the token embedding, so no head parameter is left training.
    assert not any(q.kind == "head" for q in p.trainable)
    assert p.frozen_blocks == frozenset()


def test_embeddings_untied_head_stays_trainable():
    p = plan(LLAMA, embeddings=True)
    assert p.frozen == {"model.embed_tokens.weight"}
    assert "lm_head.weight" in {q.name for q in p.trainable}


def test_first_n():
    p = plan(GPT2, layers={"first": 2})
    assert p.frozen == names(GPT2, in_blocks(0, 1))
    assert p.frozen_blocks == {0, 1}
    assert p.first_trainable_block == 2
    assert p.out_of_range == []


def test_last_n():
    p = plan(LLAMA, layers={"last": 1})
    assert p.frozen == names(LLAMA, in_blocks(3))
    assert p.frozen_blocks == {3}
    assert p.first_trainable_block == 0


def test_range_string():
    p = plan(GPT2, layers="0-1,3")
    assert p.frozen == names(GPT2, in_blocks(0, 1, 3))
    assert p.frozen_blocks == {0, 1, 3}
    assert p.first_trainable_block == 2


def test_list():
    p = plan(LLAMA, layers=[2, 0, 2])
    assert p.frozen == names(LLAMA, in_blocks(0, 2))
    assert p.frozen_blocks == {0, 2}
    assert p.first_trainable_block == 1


@pytest.mark.parametrize("arch", [GPT2, LLAMA], ids=["gpt2", "llama"])
@pytest.mark.parametrize("kind", ["attention", "mlp", "norm"])
def test_modules_filter(arch, kind):
    p = plan(arch, layers={"first": 2}, modules=[kind])
    expected = names(arch, lambda q: q.block in (0, 1) and q.kind == kind)
    assert expected and p.frozen == expected
    # Part of each block still trains, so no block counts as frozen.
    assert p.frozen_blocks == frozenset()
    assert p.first_trainable_block == 0


def test_modules_norm_outside_blocks_untouched():
    p = plan(LLAMA, layers="0-3", modules=["norm"])
    assert "model.norm.weight" not in p.frozen
    assert "model.layers.3.post_attention_layernorm.weight" in p.frozen
    assert "model.layers.3.self_attn.q_proj.weight" not in p.frozen


def test_modules_attention_and_mlp_leave_only_norms():
    p = plan(GPT2, layers="0-3", modules=["attention", "mlp"])
    in_block_trainable = {q.kind for q in p.trainable if q.block is not None}
    assert in_block_trainable == {"norm"}


def test_patterns():
    p = plan(GPT2, patterns=["*.ln_f.*", "transformer.h.2.attn.*"])
    expected = {"transformer.ln_f.weight", "transformer.ln_f.bias"} | names(
        GPT2, lambda q: q.name.startswith("transformer.h.2.attn.")
    )
    assert p.frozen == expected
    assert p.misses == []


def test_patterns_add_to_layers_and_embeddings():
    p = plan(GPT2, embeddings=True, layers={"first": 1}, patterns=["*.ln_f.*"])
    assert p.frozen == (
        names(GPT2, in_blocks(0))
        | {
            "transformer.wte.weight",
            "transformer.wpe.weight",
            "transformer.ln_f.weight",
            "transformer.ln_f.bias",
        }
    )


def test_except_applied_last():
    p = plan(
        GPT2,
        embeddings=True,
        layers="0-3",
        patterns=["*.ln_f.*"],
        **{"except": ["*.bias", "transformer.h.3.*"]},
    )
    assert not any(n.endswith(".bias") for n in p.frozen)
    assert not any(n.startswith("transformer.h.3.") for n in p.frozen)
    assert "transformer.ln_f.weight" in p.frozen
    assert "transformer.h.0.attn.c_attn.weight" in p.frozen
    # Biases train in every block, so none is wholly frozen; block 0 is the first trainable.
    assert p.frozen_blocks == frozenset()
    assert p.first_trainable_block == 0
    assert p.misses == []


def test_except_beats_modules():
    p = plan(LLAMA, layers={"first": 2}, modules=["attention"], **{"except": ["*.o_proj.*"]})
    assert p.frozen == names(
        LLAMA, lambda q: q.block in (0, 1) and q.kind == "attention" and ".o_proj." not in q.name
    )


def test_misses_recorded_with_loc():
    p = plan(
        GPT2,
        patterns=["*.ln_f.*", "model.layers.*", "*.nope"],
        **{"except": ["*.bias", "lm_head.*"]},
    )
    assert [m.loc for m in p.misses] == [
        ("freeze", "patterns", 1),
        ("freeze", "patterns", 2),
        ("freeze", "except", 1),
    ]
    assert all(isinstance(m, Miss) for m in p.misses)
    assert "'model.layers.*'" in p.misses[0].reason
    assert "'lm_head.*'" in p.misses[2].reason
    # The patterns that hit still apply.
    assert p.frozen == {"transformer.ln_f.weight"}


def test_no_misses_when_all_patterns_hit():
    p = plan(LLAMA, patterns=["lm_head.*"], **{"except": ["*"]})
    assert p.misses == []
    assert p.frozen == frozenset()


@pytest.mark.parametrize(
    ("layers", "frozen_blocks", "out_of_range"),
    [
        ([1, 4, 6], {1}, [4, 6]),
        ("2-5", {2, 3}, [4, 5]),
        ({"first": 6}, {0, 1, 2, 3}, [4, 5]),
        ({"last": 6}, {0, 1, 2, 3}, [5]),
        ({"last": LAYERS}, {0, 1, 2, 3}, []),
        ({"first": LAYERS}, {0, 1, 2, 3}, []),
        ("3", {3}, []),
    ],
)
def test_out_of_range(layers, frozen_blocks, out_of_range):
    p = plan(GPT2, layers=layers)
    assert p.frozen_blocks == frozen_blocks
    assert p.frozen == names(GPT2, lambda q: q.block in frozen_blocks)
    expected = [(("freeze", "layers"), out_of_range)] if out_of_range else []
    assert p.out_of_range == expected


def test_all_blocks_frozen_has_no_first_trainable_block():
    p = plan(LLAMA, layers={"last": LAYERS})
    assert p.frozen_blocks == set(range(LAYERS))
    assert p.first_trainable_block is None
    # Outside the blocks, embeddings, final norm and head still train.
    assert {q.name for q in p.trainable} == {
        "model.embed_tokens.weight",
        "model.norm.weight",
        "lm_head.weight",
    }


def test_first_zero_freezes_nothing():
    p = plan(GPT2, layers={"first": 0})
    assert p.frozen == frozenset() and p.out_of_range == []
    assert p.first_trainable_block == 0


# --- against reality -----------------------------------------------------------------------

REAL_SPECS = [
    pytest.param(
        GPT2,
        {
            "embeddings": True,
            "layers": "0-1,3",
            "modules": ["attention", "norm"],
            "patterns": ["*.ln_f.*"],
            "except": ["*.bias"],
        },
        id="gpt2-tied",
    ),
    pytest.param(
        LLAMA,
        {
            "embeddings": True,
            "layers": {"first": 2},
            "patterns": ["lm_head.*"],
            "except": ["*.input_layernorm.*"],
        },
        id="llama-untied",
    ),
    pytest.param(
        Architecture(
            "qwen2",
            "qwen2",
            LAYERS,
            32,
            4,
            48,
            100,
            64,
            num_kv_heads=2,
            tie_word_embeddings=True,
            qkv_bias=True,
        ),
        {
            "embeddings": True,
            "layers": {"last": 1},
            "modules": ["attention"],
            "except": ["*.k_proj.bias"],
        },
        id="qwen2-tied",
    ),
]


def _real_model(arch: Architecture):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    if arch.family == "gpt2":
        config = transformers.GPT2Config(
            n_layer=arch.num_layers,
            n_embd=arch.hidden_size,
            n_head=arch.num_heads,
            n_inner=arch.intermediate_size,
            vocab_size=arch.vocab_size,
            n_positions=arch.max_positions,
            bos_token_id=0,
            eos_token_id=0,
        )
        return transformers.GPT2LMHeadModel(config)
    config_cls, model_cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    }[arch.model_type]
    config = config_cls(
        num_hidden_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.kv_heads,
        intermediate_size=arch.intermediate_size,
        vocab_size=arch.vocab_size,
        max_position_embeddings=arch.max_positions,
        tie_word_embeddings=arch.tie_word_embeddings,
        bos_token_id=0,
        eos_token_id=0,
    )
    return model_cls(config)


@pytest.mark.parametrize(("arch", "spec"), REAL_SPECS)
def test_plan_matches_real_model(arch, spec):
    model = _real_model(arch)
    p = plan(arch, **spec)
    assert p.misses == [] and p.frozen
    real = dict(model.named_parameters())
    assert p.frozen <= real.keys()
    for name in p.frozen:
        real[name].requires_grad_(False)
    trainable = {n for n, t in model.named_parameters() if t.requires_grad}
    assert trainable == {q.name for q in p.trainable}
    # Counted over the unique tensors, the trainable share agrees too (tied heads once).
    assert sum(t.numel() for t in model.parameters() if t.requires_grad) == sum(
        q.numel for q in p.trainable
    )
    if arch.tie_word_embeddings:
        # Freezing the token embedding froze the output head with it.
        assert not model.get_output_embeddings().weight.requires_grad
