"""Shared helpers: specs at reduced dimensions, written as local Hugging Face configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freezegen.spec import load_text

CONFIGS = {
    "gpt2": {
        "model_type": "gpt2",
        "n_layer": 4,
        "n_embd": 256,
        "n_head": 4,
        "n_inner": 1024,
        "vocab_size": 2048,
        "n_positions": 512,
    },
    # GPT-2 with its own output head: no tied gradient to sum.
    "gpt2-untied": {
        "model_type": "gpt2",
        "n_layer": 4,
        "n_embd": 256,
        "n_head": 4,
        "n_inner": 1024,
        "vocab_size": 2048,
        "n_positions": 512,
        "tie_word_embeddings": False,
    },
    "bert": {
        "model_type": "bert",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
    },
    # BERT's masked-LM head with its own decoder weight: no tied gradient to sum either.
    "bert-untied": {
        "model_type": "bert",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
    "llama": {
        "model_type": "llama",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
    # llama twice as wide: each block's parameters outweigh what few tokens save
    "llama-wide": {
        "model_type": "llama",
        "num_hidden_layers": 4,
        "hidden_size": 512,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 1376,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
    "mistral": {
        "model_type": "mistral",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
    "qwen2": {
        "model_type": "qwen2",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
    },
    # qwen3: head_dim 48, not hidden / heads; per-head q/k norms.
    "qwen3": {
        "model_type": "qwen3",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 48,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
    },
    # phi3: fused qkv and gate_up projections, residual dropout.
    "phi3": {
        "model_type": "phi3",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "original_max_position_embeddings": 512,
        "resid_pdrop": 0.1,
        "attention_dropout": 0.1,
        "pad_token_id": 0,
        "tie_word_embeddings": False,
    },
    # gemma3: head_dim 48, four Gemma RMSNorms per block and per-head q/k norms, GeGLU,
    # scaled and tied embeddings; sliding-window layers with a window longer than the sequences.
    "gemma3": {
        "model_type": "gemma3_text",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 48,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "sliding_window": 512,
        "layer_types": [
            "sliding_attention",
            "sliding_attention",
            "sliding_attention",
            "full_attention",
        ],
    },
    # olmo2: q/k norms over the whole projections, norms after the attention and the MLP.
    "olmo2": {
        "model_type": "olmo2",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "pad_token_id": 0,
        "tie_word_embeddings": False,
    },
    # granite's multipliers at the published 3.0 values; a tied head
    "granite": {
        "model_type": "granite",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 688,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
        "embedding_multiplier": 12.0,
        "residual_multiplier": 0.22,
        "attention_multiplier": 0.03125,
        "logits_scaling": 8.0,
    },
    # top-2 of 4 experts: every tensor of the routed MLP has tokens x 2 rows
    "mixtral": {
        "model_type": "mixtral",
        "num_hidden_layers": 4,
        "hidden_size": 256,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "intermediate_size": 344,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "vocab_size": 2048,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    },
}


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("configs")
    for name, cfg in CONFIGS.items():
        (root / f"{name}.json").write_text(json.dumps(cfg))
    return root


@pytest.fixture(scope="session")
def make_spec(config_dir: Path):
    """Return ``make(family, body_yaml, model_extra="")`` -> a validated Spec."""

    def make(family: str, body: str = "", model_extra: str = ""):
        extra = f", {model_extra}" if model_extra else ""
        text = (
            f"version: 1\nmodel: {{hf_config: {config_dir / (family + '.json')}{extra}}}\n{body}\n"
        )
        if "batch:" not in body:
            text += "batch: {micro_batch_size: 8, seq_len: 256}\n"
        result = load_text(text)
        assert result.spec is not None, result.diagnostics
        return result.spec

    return make
