"""Family.packed_documents against transformers: which families keep packed documents apart."""

from __future__ import annotations

import pytest

from freezegen.arch.families import all_families, family_for_model_type
from tests.family_configs import TINY_CONFIGS


@pytest.mark.parametrize("family", sorted(f.name for f in all_families()))
def test_family_packed_documents_is_what_transformers_does(family: str) -> None:
    """Family.packed_documents, checked against the real model: a document packed after
    another gives the same logits as alone exactly when the flag says so (eager and sdpa)."""
    import torch
    import transformers

    config = TINY_CONFIGS[family]
    flag = family_for_model_type(config["model_type"]).packed_documents
    for attention in ("eager", "sdpa"):
        built = transformers.AutoConfig.for_model(
            **config, **family_for_model_type(config["model_type"]).causal_lm_config
        )
        built._attn_implementation = attention
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(built).eval()
        first, second = torch.randint(2, 60, (1, 5)), torch.randint(2, 60, (1, 6))
        positions = torch.tensor([[*range(5), *range(6)]])
        with torch.no_grad():
            alone = model(input_ids=second, use_cache=False).logits
            packed = model(
                input_ids=torch.cat([first, second], 1), position_ids=positions, use_cache=False
            ).logits[:, 5:]
        assert torch.allclose(alone, packed, atol=1e-5) == flag, (family, attention)
