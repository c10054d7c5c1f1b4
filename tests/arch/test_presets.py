"""Preset parameter counts against the published ones (torch-free)."""

from __future__ import annotations

import pytest

from freezegen.arch.params import parameter_table
from freezegen.spec.presets import MODEL_PRESETS

# Total parameters of the published checkpoints, as named_parameters() counts them (a tied
# output head counted once). Cross-checked against transformers models built on the meta
# device from the published config.json dimensions (tests/arch/test_params.py).
PUBLISHED = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "bert-base-uncased": 109_483_778,  # BertForSequenceClassification, 2 labels
    "bert-large-uncased": 335_143_938,  # BertForSequenceClassification, 2 labels
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-3-8b": 8_030_261_248,
    "mistral-7b": 7_241_732_096,
    "qwen2-0.5b": 494_032_768,
    "qwen2-1.5b": 1_543_714_304,
    "qwen2-7b": 7_615_616_512,
    "tinyllama-1.1b": 1_100_048_384,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.2-1b": 1_235_814_400,  # tied head
    "llama-3.2-3b": 3_212_749_824,  # tied head
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-7b": 7_615_616_512,
    "qwen3-0.6b": 596_049_920,  # tied head
    "qwen3-8b": 8_190_735_360,
    "phi-3-mini": 3_821_079_552,
    "olmo2-7b": 7_298_617_344,
    "gemma-3-1b": 999_885_952,  # tied head
    # Mixtral: 46.7B and 141B as Mistral AI publishes them (8 experts, top-2).
    "mixtral-8x7b": 46_702_792_704,
    "mixtral-8x22b": 140_620_634_112,
    # Granite 3.0 base: 8.17B and 2.53B on their model cards (tied head).
    "granite-3.0-2b": 2_533_531_648,
    "granite-3.0-8b": 8_170_848_256,
}


def test_every_preset_has_a_published_count():
    assert set(PUBLISHED) == set(MODEL_PRESETS)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_parameter_count(name):
    arch = MODEL_PRESETS[name]
    head = "sequence-classification" if arch.family == "bert" else "causal-lm"
    table = parameter_table(arch, head, num_labels=2)
    assert sum(p.numel for p in table) == PUBLISHED[name]
    assert len({p.name for p in table}) == len(table)


@pytest.mark.parametrize("name", sorted(MODEL_PRESETS))
def test_blocks_cover_every_layer(name):
    arch = MODEL_PRESETS[name]
    blocks = {p.block for p in parameter_table(arch) if p.block is not None}
    assert blocks == set(range(arch.num_layers))
