"""The data a generated script reads: what it can do, what it says about packing, its constants.

One home for the data decisions that lint and generate share: :func:`check_data_supported`
refuses what the script cannot run (lint reports the same refusal, located),
:func:`chat_template_problem` reads a local tokenizer folder for the chat template a ``chat``
format needs (without importing transformers: lint stays torch-free), and
:func:`packing_caveat` says where packed documents attend to each other. The script's parts for
file sources live in templates/parts/data/ (reading, one format, padded or packed rows, the
shared tokenize-and-mask part ``files``); :func:`data_parts` picks them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from freezegen.arch.family import Family
from freezegen.generate.errors import GenerateError
from freezegen.generate.literals import assignment
from freezegen.spec.models import FILE_SOURCES, Spec

# datasets' packaged builder per file source; a saved folder is read with load_from_disk.
_BUILDERS = {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}
# Streamed rows are shuffled within a buffer this long: a bound on the rows held in memory,
# long enough to mix neighbouring records of a file written in some order.
SHUFFLE_BUFFER_ROWS = 1024
_FORMAT_FIELDS = {
    "text": (("TEXT_FIELD", "text_field"),),
    "completion": (("PROMPT_FIELD", "prompt_field"), ("COMPLETION_FIELD", "completion_field")),
    "chat": (("MESSAGES_FIELD", "messages_field"),),
}


def check_data_supported(spec: Spec) -> None:
    """Raise GenerateError (located at the setting to blame) for data the script cannot run."""
    d = spec.data
    classifier = spec.model.head == "sequence-classification"
    if d.source not in FILE_SOURCES:
        for key, default in (("format", "text"), ("packing", False), ("streaming", False)):
            if getattr(d, key) != default:
                raise GenerateError(
                    f"data.{key} applies to file sources (text, jsonl, json, csv, parquet, "
                    f"saved), not to {d.source}",
                    ("data", key),
                )
        if d.validation is not None:
            raise GenerateError(
                f"data.validation reads files; the {d.source} source has none",
                ("data", "validation"),
            )
        return
    if classifier and d.format != "text":
        raise GenerateError(
            f"format {d.format} trains a language model on its targets; a sequence-"
            "classification head reads records of format text with a 'label' field",
            ("data", "format"),
        )
    if classifier and d.packing:
        raise GenerateError(
            "a sequence-classification head predicts one label per example: packing several "
            "examples into a row would mix their labels",
            ("data", "packing"),
        )
    if d.source == "text":
        if classifier:
            raise GenerateError(
                "a sequence-classification head needs labels: use data.source jsonl (with a "
                "'label' field), synthetic or factory, not text",
                ("data", "source"),
            )
        if d.format != "text":
            raise GenerateError(
                f"a text file is one document with no fields; format {d.format} reads records: "
                "use jsonl, json, csv, parquet or saved",
                ("data", "format"),
            )
        if d.validation is not None and d.validation.split is not None:
            raise GenerateError(
                "a text file is one document, which cannot be split: give data.validation.path",
                ("data", "validation", "split"),
            )
        if d.streaming:
            raise GenerateError(
                "a text file is one document, read whole: streaming needs records (jsonl, "
                "json, csv, parquet or saved)",
                ("data", "streaming"),
            )


def chat_template_problem(tokenizer: Path) -> str | None:
    """Why the tokenizer folder cannot render chats, or None when it can (or is not a folder:
    a missing tokenizer is reported elsewhere). Reads the files transformers reads for a chat
    template (chat_template.jinja, chat_template.json, tokenizer_config.json's chat_template)
    and the tokenizer.json whose offsets map the rendered turns to tokens."""
    try:
        return _chat_template_problem(tokenizer)
    except OSError:  # e.g. a name too long for the file system: FG112 says so
        return None


def _chat_template_problem(tokenizer: Path) -> str | None:
    if not tokenizer.is_dir():
        return None
    if not (tokenizer / "tokenizer.json").is_file():
        return (
            f"{tokenizer} has no tokenizer.json: format chat needs a fast tokenizer, whose "
            "offsets map the template's assistant turns to tokens"
        )
    if (tokenizer / "chat_template.jinja").is_file():
        return None
    for name in ("chat_template.json", "tokenizer_config.json"):
        path = tokenizer / name
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return f"{path} cannot be read: {exc}"
        if isinstance(config, dict) and config.get("chat_template"):
            return None
    return (
        f"{tokenizer} has no chat template (chat_template.jinja, or chat_template in "
        "tokenizer_config.json): format chat renders conversations with the tokenizer's own"
    )


def packing_caveat(spec: Spec, family: Family | None) -> str | None:
    """Why the documents packed in a row attend to each other in ``spec``'s model, or None when
    they do not (position_ids restarts keep them apart) or nothing is packed. ``family``: the
    model's family, None for a factory or an architecture no family knows."""
    d = spec.data
    if not d.packing or d.source not in FILE_SOURCES:
        return None
    if spec.model.factory is not None:
        return (
            "a factory model is called with input_ids alone: the documents packed in a row "
            "attend to each other"
        )
    if family is None:
        return (
            "freezegen does not know this architecture, nor whether its attention keeps packed "
            "documents apart (position_ids restarts): they may attend to each other"
        )
    if not family.packed_documents:
        return (
            f"{family.name}'s attention ignores position_ids restarts: the documents packed in "
            "a row attend to each other"
        )
    return None


def packing_note(spec: Spec, family: Family | None) -> str:
    """The line a packing script logs at its start: how documents are kept apart, or that
    they are not."""
    caveat = packing_caveat(spec, family)
    if caveat is not None:
        return f"packing: {caveat} (their first tokens are still never targets)"
    return (
        "packing: each document attends only to itself (position_ids restart at every "
        "document; transformers masks attention across them)"
    )


def data_parts(spec: Spec, several: bool) -> list[str]:
    """The data slot's parts (names under templates/parts/) for ``spec``'s file source."""
    d = spec.data
    read = "data/read-text" if d.source == "text" else "data/read-datasets"
    rows = "data/rows-packed" if d.packed_rows else "data/rows-padded"
    stream = ("data/streamed" if d.streaming else "data/stream") + ("-ranks" if several else "")
    share = ["data/share-ranks"] if several else []
    return ["data/example", read, f"data/format-{d.format}", rows, "data/files", *share, stream]


def data_constants(spec: Spec, rel: Any, family: Family | None) -> list[str]:
    """The ``NAME = literal`` lines of a file source's settings (paths relative via ``rel``;
    ``family`` as for :func:`packing_caveat`)."""
    d = spec.data
    lines = [assignment("DATA_PATH", rel(d.path)), assignment("TOKENIZER", rel(d.tokenizer))]
    if d.source != "text":
        lines.append(assignment("DATASET_BUILDER", _BUILDERS.get(d.source)))
    for constant, key in _FORMAT_FIELDS[d.format]:
        lines.append(assignment(constant, getattr(d, key)))
    if not d.packed_rows:
        lines.append(assignment("TRUNCATION", d.truncation))
    if d.packing:
        lines.append(assignment("PACKING_NOTE", packing_note(spec, family)))
    if d.streaming:
        lines.append(assignment("SHUFFLE_BUFFER", SHUFFLE_BUFFER_ROWS))
    validation = d.validation
    lines += [
        assignment("VALIDATION_PATH", None if validation is None else rel(validation.path)),
        assignment("VALIDATION_SPLIT", None if validation is None else validation.split),
    ]
    return lines
