"""One row per model family: the tiny config.json every family-wide test builds.

Adding a family (freezegen/arch/families/<family>.py) adds its row here, keyed by the family's
name; tests/arch/test_families.py fails for a family without one. The generated-script goldens
embed these configs, so a row never changes once written.
"""

from __future__ import annotations

from typing import Any

# hidden 32, 2 blocks, 64 tokens: a few milliseconds per step on one CPU thread.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt2": {
        "model_type": "gpt2",
        "vocab_size": 64,
        "n_positions": 32,
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "bert": {
        "model_type": "bert",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
    },
    "llama": {
        "model_type": "llama",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "qwen2": {
        "model_type": "qwen2",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
        "tie_word_embeddings": True,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "mistral": {
        "model_type": "mistral",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "mixtral": {
        "model_type": "mixtral",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "max_position_embeddings": 32,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
    "granite": {
        "model_type": "granite",
        "vocab_size": 64,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "max_position_embeddings": 32,
        "tie_word_embeddings": True,
        "embedding_multiplier": 12.0,
        "residual_multiplier": 0.22,
        "attention_multiplier": 0.0625,
        "logits_scaling": 8.0,
        "bos_token_id": 1,
        "eos_token_id": 1,
    },
}
