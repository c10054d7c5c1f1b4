"""Local text and jsonl data through a local tokenizer (built here: nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.generate.conftest import generate, run_scripts, tiny_spec

# Each test runs generated scripts in subprocesses: seconds each.
pytestmark = pytest.mark.slow

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "the", "dog", "ran", "to", "it"]


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(dict.fromkeys(WORDS))}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]"
    ).save_pretrained(folder)


def test_text_and_jsonl_sources_train(tmp_path: Path) -> None:
    text_dir, jsonl_dir = tmp_path / "text", tmp_path / "jsonl"
    text_dir.mkdir()
    jsonl_dir.mkdir()
    for folder in (text_dir, jsonl_dir):
        _tokenizer(folder / "tok")
    (text_dir / "corpus.txt").write_text(" ".join(WORDS * 40))
    lines = [
        {"body": " ".join(WORDS[i % 5 : i % 5 + 3 + i % 7]), "label": i % 2} for i in range(50)
    ]
    (jsonl_dir / "train.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    text_spec = tiny_spec(
        text_dir,
        "llama",
        data={"source": "text", "path": "corpus.txt", "tokenizer": "tok"},
        freeze={"layers": {"first": 1}},
    )
    jsonl_spec = tiny_spec(
        jsonl_dir,
        "gpt2",
        model={"hf_config": "./config.json", "head": "sequence-classification"},
        data={"source": "jsonl", "path": "train.jsonl", "tokenizer": "tok", "text_field": "body"},
        freeze={"embeddings": True},
        batch={"micro_batch_size": 4, "grad_accum_steps": 3, "seq_len": 16},
    )
    text_run, jsonl_run = run_scripts([generate(text_spec), generate(jsonl_spec)])
    for run in (text_run.check(), jsonl_run.check()):
        assert len(run.losses) == 24
    # The corpus repeats: a language model learns it quickly.
    assert text_run.losses[-1] < 0.5 * text_run.losses[0]
