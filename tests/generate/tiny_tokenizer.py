"""A word-level tokenizer folder with a chat template, built with the tokenizers library: the
data tests and the shipped examples' tokenizer (examples/data/tok) come from here, nothing is
downloaded."""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "dog",
    "ran",
    "to",
    "it",
    "what",
    "is",
    "two",
    "plus",
    "one",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "hello",
    "hi",
    "how",
    "are",
    "you",
    "fine",
    "thanks",
    "say",
    "count",
    "up",
    "from",
    "add",
    ",",
    ".",
    "?",
    "!",
]
# Each turn: its role marker, its words, the end-of-turn marker; the generation prompt is the
# assistant's marker. Rendering a prefix of a conversation gives a prefix of the whole.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} <|end|> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def write_tokenizer(folder: Path, chat_template: str | None = CHAT_TEMPLATE) -> Path:
    """Save the tokenizer into ``folder`` (tokenizer.json, tokenizer_config.json); return it."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(dict.fromkeys(SPECIAL + WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="[PAD]",
        unk_token="[UNK]",
        eos_token="<|end|>",
        additional_special_tokens=SPECIAL[3:],
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    return folder
