"""Catalogue of model architectures and GPUs a spec can name.

Model presets are architecture only (no weights): the dimensions of each model's published
Hugging Face ``config.json``. GPU memory is what ``torch.cuda.get_device_properties().total_memory``
reports on the card (nvidia-smi's "Total" in MiB), not the marketing number. Qwen2's
max_positions is the base models' config value (131072); their trained context is 32K.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class Architecture:
    """The dimensions that decide parameter count and memory, named as in Hugging Face configs."""

    family: str  # the name of its family in freezegen.arch.families
    model_type: str  # the config.json model_type
    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    num_kv_heads: int | None = None  # grouped-query attention; None means num_heads
    tie_word_embeddings: bool = True
    qkv_bias: bool = False  # biases on q/k/v (qwen2; llama with attention_bias)
    type_vocab_size: int = 0  # bert token-type embeddings
    dropout: float = 0.0  # residual/attention/embedding dropout in the published config
    explicit_head_dim: int | None = None  # a config's head_dim (qwen3, gemma); None: hidden/heads
    sliding_window: int | None = None  # the window of sliding-window attention layers (gemma3)
    num_experts: int = 0  # mixture of experts: routed experts per block (0: a dense MLP)
    experts_per_token: int = 0  # mixture of experts: experts each token is routed to (top-k)
    # Published config values that change no shape and no saved tensor (granite's multipliers),
    # passed through to the transformers config as they are.
    config_extras: tuple[tuple[str, float], ...] = ()

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_dim(self) -> int:
        """The width of one attention head: the config's own, else hidden_size // num_heads."""
        return self.explicit_head_dim or self.hidden_size // self.num_heads

    @property
    def attention_width(self) -> int:
        """The width of the attention's query and output: num_heads * head_dim."""
        return self.num_heads * self.head_dim


def _gpt2(layers: int, hidden: int, heads: int) -> Architecture:
    return Architecture("gpt2", "gpt2", layers, hidden, heads, 4 * hidden, 50257, 1024, dropout=0.1)


def _bert(layers: int, hidden: int, heads: int) -> Architecture:
    return Architecture(
        "bert",
        "bert",
        layers,
        hidden,
        heads,
        4 * hidden,
        30522,
        512,
        type_vocab_size=2,
        dropout=0.1,
    )


def _granite(
    layers: int,
    hidden: int,
    intermediate: int,
    *,
    attention_multiplier: float,
    logits_scaling: float,
) -> Architecture:
    """A Granite 3.0 base model: 32 heads over 8 key/value heads, 49,155 tokens, 4K context,
    a tied head, and the published multipliers."""
    extras = (
        ("embedding_multiplier", 12.0),
        ("residual_multiplier", 0.22),
        ("attention_multiplier", attention_multiplier),
        ("logits_scaling", logits_scaling),
    )
    return Architecture(
        "granite",
        "granite",
        layers,
        hidden,
        32,
        intermediate,
        49155,
        4096,
        num_kv_heads=8,
        tie_word_embeddings=True,
        config_extras=extras,
    )


# fmt: off
MODEL_PRESETS: dict[str, Architecture] = {
    "gpt2": _gpt2(12, 768, 12),
    "gpt2-medium": _gpt2(24, 1024, 16),
    "gpt2-large": _gpt2(36, 1280, 20),
    "gpt2-xl": _gpt2(48, 1600, 25),
    "bert-base-uncased": _bert(12, 768, 12),
    "bert-large-uncased": _bert(24, 1024, 16),
    "llama-2-7b": Architecture("llama", "llama", 32, 4096, 32, 11008, 32000, 4096,
                               num_kv_heads=32, tie_word_embeddings=False),
    "llama-2-13b": Architecture("llama", "llama", 40, 5120, 40, 13824, 32000, 4096,
                                num_kv_heads=40, tie_word_embeddings=False),
    "llama-3-8b": Architecture("llama", "llama", 32, 4096, 32, 14336, 128256, 8192,
                               num_kv_heads=8, tie_word_embeddings=False),
    "mistral-7b": Architecture("mistral", "mistral", 32, 4096, 32, 14336, 32000, 32768,
                               num_kv_heads=8, tie_word_embeddings=False),
    "qwen2-0.5b": Architecture("qwen2", "qwen2", 24, 896, 14, 4864, 151936, 131072,
                               num_kv_heads=2, tie_word_embeddings=True, qkv_bias=True),
    "qwen2-1.5b": Architecture("qwen2", "qwen2", 28, 1536, 12, 8960, 151936, 131072,
                               num_kv_heads=2, tie_word_embeddings=True, qkv_bias=True),
    "qwen2-7b": Architecture("qwen2", "qwen2", 28, 3584, 28, 18944, 152064, 131072,
                             num_kv_heads=4, tie_word_embeddings=False, qkv_bias=True),
    "tinyllama-1.1b": Architecture("llama", "llama", 22, 2048, 32, 5632, 32000, 2048,
                                   num_kv_heads=4, tie_word_embeddings=False),
    "llama-3.1-8b": Architecture("llama", "llama", 32, 4096, 32, 14336, 128256, 131072,
                                 num_kv_heads=8, tie_word_embeddings=False),
    "llama-3.1-70b": Architecture("llama", "llama", 80, 8192, 64, 28672, 128256, 131072,
                                  num_kv_heads=8, tie_word_embeddings=False),
    "llama-3.2-1b": Architecture("llama", "llama", 16, 2048, 32, 8192, 128256, 131072,
                                 num_kv_heads=8, tie_word_embeddings=True),
    "llama-3.2-3b": Architecture("llama", "llama", 28, 3072, 24, 8192, 128256, 131072,
                                 num_kv_heads=8, tie_word_embeddings=True),
    "qwen2.5-0.5b": Architecture("qwen2", "qwen2", 24, 896, 14, 4864, 151936, 32768,
                                 num_kv_heads=2, tie_word_embeddings=True, qkv_bias=True),
    "qwen2.5-7b": Architecture("qwen2", "qwen2", 28, 3584, 28, 18944, 152064, 131072,
                               num_kv_heads=4, tie_word_embeddings=False, qkv_bias=True),
    "qwen3-0.6b": Architecture("qwen3", "qwen3", 28, 1024, 16, 3072, 151936, 40960,
                               num_kv_heads=8, tie_word_embeddings=True, explicit_head_dim=128),
    "qwen3-8b": Architecture("qwen3", "qwen3", 36, 4096, 32, 12288, 151936, 40960,
                             num_kv_heads=8, tie_word_embeddings=False, explicit_head_dim=128),
    "phi-3-mini": Architecture("phi3", "phi3", 32, 3072, 32, 8192, 32064, 4096,
                               num_kv_heads=32, tie_word_embeddings=False),
    "gemma-3-1b": Architecture("gemma3", "gemma3_text", 26, 1152, 4, 6912, 262144, 32768,
                               num_kv_heads=1, tie_word_embeddings=True, explicit_head_dim=256,
                               sliding_window=512),
    "olmo2-7b": Architecture("olmo2", "olmo2", 32, 4096, 32, 11008, 100352, 4096,
                             num_kv_heads=32, tie_word_embeddings=False),
    "granite-3.0-2b": _granite(40, 2048, 8192, attention_multiplier=0.015625, logits_scaling=8.0),
    "granite-3.0-8b": _granite(40, 4096, 12800, attention_multiplier=0.0078125,
                               logits_scaling=16.0),
    "mixtral-8x7b": Architecture("mixtral", "mixtral", 32, 4096, 32, 14336, 32000, 32768,
                                 num_kv_heads=8, tie_word_embeddings=False,
                                 num_experts=8, experts_per_token=2),
    "mixtral-8x22b": Architecture("mixtral", "mixtral", 56, 6144, 48, 16384, 32000, 65536,
                                  num_kv_heads=8, tie_word_embeddings=False,
                                  num_experts=8, experts_per_token=2),
}
# fmt: on


@dataclass(frozen=True, slots=True)
class Gpu:
    """A GPU model: usable memory as torch reports it, bf16 support, compute capability."""

    name: str
    memory_bytes: int
    compute_capability: tuple[int, int]

    @property
    def bf16(self) -> bool:
        # bf16 tensor cores arrived with Ampere (sm_80); older cards lack them.
        return self.compute_capability >= (8, 0)

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


GPUS: dict[str, Gpu] = {
    g.name: g
    for g in (
        Gpu("T4", 15360 * MIB, (7, 5)),
        Gpu("V100-16GB", 16384 * MIB, (7, 0)),
        Gpu("V100-32GB", 32768 * MIB, (7, 0)),
        Gpu("A10G", 23028 * MIB, (8, 6)),
        Gpu("L4", 23034 * MIB, (8, 9)),
        Gpu("RTX-3090", 24576 * MIB, (8, 6)),
        Gpu("RTX-4090", 24564 * MIB, (8, 9)),
        Gpu("A100-40GB", 40960 * MIB, (8, 0)),
        Gpu("A100-80GB", 81920 * MIB, (8, 0)),
        Gpu("H100-80GB", 81559 * MIB, (9, 0)),
        Gpu("H200", 143771 * MIB, (9, 0)),
    )
}
