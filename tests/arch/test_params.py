"""parameter_table and from_hf_config against the real transformers models they predict.

Every case builds a tiny model from a config made in code (nothing is downloaded), saves the
config, reads it back with freezegen and compares the predicted table with
``named_parameters()``: names, order and shapes.
"""

from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from freezegen.arch import ArchitectureError, from_hf_config  # noqa: E402
from freezegen.arch.params import parameter_table  # noqa: E402
from freezegen.spec.presets import MODEL_PRESETS, Architecture  # noqa: E402

CAUSAL, CLASSIFY = "causal-lm", "sequence-classification"
LABELS = 3

GPT2 = dict(
    n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0
)
BERT = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=64,
    type_vocab_size=3,
)
# GQA: 2 key/value heads for 4 query heads.
LLAMA = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=48,
    vocab_size=100,
    max_position_embeddings=64,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=0,
)

_DECODERS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", "LlamaForSequenceClassification"),
    "mistral": ("MistralConfig", "MistralForCausalLM", "MistralForSequenceClassification"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "Qwen2ForSequenceClassification"),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", "MixtralForSequenceClassification"),
    "granite": ("GraniteConfig", "GraniteForCausalLM", None),
}


def _model(family: str, head: str, **overrides):
    """Return (config, model) of ``family`` with ``head``; overrides go to the config."""
    T = transformers
    labels = {"num_labels": LABELS} if head == CLASSIFY else {}
    if family == "gpt2":
        config = T.GPT2Config(**{**GPT2, **overrides}, **labels)
        cls = T.GPT2LMHeadModel if head == CAUSAL else T.GPT2ForSequenceClassification
    elif family == "bert":
        config = T.BertConfig(**{**BERT, **overrides}, is_decoder=head == CAUSAL, **labels)
        cls = T.BertLMHeadModel if head == CAUSAL else T.BertForSequenceClassification
    else:
        cfg_name, lm_name, cls_name = _DECODERS[family]
        if head == CLASSIFY and cls_name is None:
            pytest.skip(f"transformers has no {family} sequence-classification class")
        config = getattr(T, cfg_name)(**{**LLAMA, **overrides}, **labels)
        cls = getattr(T, lm_name if head == CAUSAL else cls_name)
    return config, cls(config)


def _real(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, tuple(p.shape)) for n, p in model.named_parameters()]


def _predicted(arch: Architecture, head: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(p.name, p.shape) for p in parameter_table(arch, head, LABELS)]


CASES = [
    pytest.param("gpt2", {}, id="gpt2"),
    pytest.param("gpt2", {"tie_word_embeddings": False}, id="gpt2-untied"),
    pytest.param("gpt2", {"n_inner": 80}, id="gpt2-n_inner"),
    pytest.param("bert", {}, id="bert"),
    pytest.param("bert", {"tie_word_embeddings": False}, id="bert-untied"),
    pytest.param("llama", {"tie_word_embeddings": False}, id="llama-untied-gqa"),
    pytest.param("llama", {"tie_word_embeddings": True}, id="llama-tied-gqa"),
    pytest.param("llama", {"num_key_value_heads": None}, id="llama-mha"),
    pytest.param("llama", {"attention_bias": True}, id="llama-attention_bias"),
    pytest.param("mistral", {"tie_word_embeddings": False}, id="mistral-gqa"),
    pytest.param("mistral", {"attention_bias": True}, id="mistral-ignores-attention_bias"),
    pytest.param("qwen2", {"tie_word_embeddings": False}, id="qwen2-untied-gqa"),
    pytest.param("qwen2", {"tie_word_embeddings": True}, id="qwen2-tied-gqa"),
    pytest.param("mixtral", {"num_local_experts": 4}, id="mixtral-top2-of-4"),
    pytest.param("granite", {"tie_word_embeddings": True}, id="granite-tied"),
]


@pytest.mark.parametrize("head", [CAUSAL, CLASSIFY])
@pytest.mark.parametrize(("family", "overrides"), CASES)
def test_table_matches_named_parameters(tmp_path, family, overrides, head):
    config, model = _model(family, head, **overrides)
    config.save_pretrained(tmp_path)
    arch = from_hf_config(tmp_path / "config.json")
    assert arch.model_type == family
    assert _predicted(arch, head) == _real(model)


def test_config_folder_and_file_read_the_same(tmp_path):
    config, _ = _model("qwen2", CAUSAL)
    config.save_pretrained(tmp_path)
    assert from_hf_config(tmp_path) == from_hf_config(tmp_path / "config.json")


def test_gqa_and_bias_read_from_config(tmp_path):
    config, _ = _model("qwen2", CAUSAL, tie_word_embeddings=True)
    config.save_pretrained(tmp_path)
    arch = from_hf_config(tmp_path)
    assert (arch.num_heads, arch.kv_heads, arch.head_dim) == (4, 2, 8)
    assert arch.qkv_bias and arch.tie_word_embeddings


@pytest.mark.parametrize(
    ("family", "overrides", "message"),
    [
        ("llama", {"mlp_bias": True}, "mlp_bias"),
        ("llama", {"head_dim": 16}, "head_dim"),
        ("mistral", {"head_dim": 16}, "head_dim"),
        ("gpt2", {"add_cross_attention": True}, "add_cross_attention"),
        ("mixtral", {"output_router_logits": True}, "output_router_logits"),
        ("mixtral", {"router_jitter_noise": 0.1}, "router_jitter_noise"),
        ("mixtral", {"num_experts_per_tok": 5, "num_local_experts": 4}, "num_experts_per_tok"),
        ("granite", {"mlp_bias": True}, "mlp_bias"),
    ],
)
def test_configs_the_table_cannot_describe_are_refused(tmp_path, family, overrides, message):
    config, _ = _model(family, CAUSAL, **overrides)
    config.save_pretrained(tmp_path)
    with pytest.raises(ArchitectureError, match=message):
        from_hf_config(tmp_path)


def _preset_model(arch: Architecture, head: str):
    """Build ``arch`` on the meta device (no memory) as the transformers class for ``head``."""
    T = transformers
    if arch.family == "gpt2":
        config = T.GPT2Config(
            n_layer=arch.num_layers,
            n_embd=arch.hidden_size,
            n_head=arch.num_heads,
            n_inner=arch.intermediate_size,
            vocab_size=arch.vocab_size,
            n_positions=arch.max_positions,
            tie_word_embeddings=arch.tie_word_embeddings,
        )
        cls = T.GPT2LMHeadModel if head == CAUSAL else T.GPT2ForSequenceClassification
    elif arch.family == "bert":
        config = T.BertConfig(
            num_hidden_layers=arch.num_layers,
            hidden_size=arch.hidden_size,
            num_attention_heads=arch.num_heads,
            intermediate_size=arch.intermediate_size,
            vocab_size=arch.vocab_size,
            max_position_embeddings=arch.max_positions,
            type_vocab_size=arch.type_vocab_size,
            is_decoder=head == CAUSAL,
        )
        cls = T.BertLMHeadModel if head == CAUSAL else T.BertForSequenceClassification
    elif arch.model_type not in _DECODERS:
        # A family added since: its config from the published dimensions, read by transformers.
        from freezegen.arch.hf import _preset_config

        config = T.AutoConfig.for_model(arch.model_type, **_preset_config(arch))
        auto = T.AutoModelForCausalLM if head == CAUSAL else T.AutoModelForSequenceClassification
        config.num_labels = LABELS
        with torch.device("meta"):
            return auto.from_config(config)
    else:
        cfg_name, lm_name, cls_name = _DECODERS[arch.model_type]
        config = getattr(T, cfg_name)(
            num_hidden_layers=arch.num_layers,
            hidden_size=arch.hidden_size,
            num_attention_heads=arch.num_heads,
            num_key_value_heads=arch.kv_heads,
            intermediate_size=arch.intermediate_size,
            vocab_size=arch.vocab_size,
            max_position_embeddings=arch.max_positions,
            tie_word_embeddings=arch.tie_word_embeddings,
            attention_bias=arch.qkv_bias and arch.model_type == "llama",
            **_experts(arch),
        )
        cls = getattr(T, lm_name if head == CAUSAL else cls_name)
    config.num_labels = LABELS
    with torch.device("meta"):
        return cls(config)


def _experts(arch: Architecture) -> dict[str, int]:
    """A mixture of experts' config keys (none for a dense model)."""
    if not arch.num_experts:
        return {}
    return {"num_local_experts": arch.num_experts, "num_experts_per_tok": arch.experts_per_token}


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_preset_table_matches_meta_model(name):
    arch = MODEL_PRESETS[name]
    head = CLASSIFY if arch.family == "bert" else CAUSAL
    assert _predicted(arch, head) == _real(_preset_model(arch, head))
