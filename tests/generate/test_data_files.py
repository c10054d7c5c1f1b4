"""File data in the generated script, tested in-process on its own functions: masking (exact,
truncated, packed), packing's document boundaries, validation sets, every file source, and the
batch shape the estimate assumes. The tokenizer is built here (tests/generate/tiny_tokenizer.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.generate.conftest import generate, script_namespace, tiny_spec
from tests.generate.tiny_tokenizer import write_tokenizer

CHAT = [
    {"role": "system", "content": "say hi"},
    {"role": "user", "content": "what is two plus one ?"},
    {"role": "assistant", "content": "three ."},
    {"role": "user", "content": "and two plus two ?"},
    {"role": "assistant", "content": "four !"},
]
COMPLETIONS = [
    {"prompt": "what is two plus one ?", "completion": "three ."},
    {"prompt": "count up from two", "completion": "three four five six seven eight"},
    {"prompt": "hello", "completion": "hi"},
]


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _script(folder: Path, records: list[dict[str, Any]], seq_len: int = 32, **data: Any):
    """Generate a script over ``records`` (train.jsonl) and return its namespace."""
    folder.mkdir(parents=True)
    write_tokenizer(folder / "tok")
    _write_jsonl(folder / "train.jsonl", records)
    spec = tiny_spec(
        folder,
        data={"source": "jsonl", "path": "train.jsonl", "tokenizer": "tok", **data},
        batch={"micro_batch_size": 2, "grad_accum_steps": 1, "seq_len": seq_len},
    )
    return script_namespace(generate(spec))


def _set(ns: dict[str, Any], **constants: Any) -> None:
    """Change the script's constants where its functions read them (run_path returns a copy
    of the module's globals)."""
    ns["build_dataset"].__globals__.update(constants)


def _tokens(ns: dict[str, Any], text: str) -> list[int]:
    return ns["load_tokenizer"]()(text, add_special_tokens=False)["input_ids"]


def test_completion_labels_are_the_completion_and_its_end(tmp_path: Path) -> None:
    ns = _script(tmp_path / "s", COMPLETIONS, format="completion")
    tokenizer = ns["load_tokenizer"]()
    end = tokenizer.eos_token_id
    for record in COMPLETIONS:
        ids, labels = ns["tokenize_record"](tokenizer, record)
        prompt, completion = _tokens(ns, record["prompt"]), _tokens(ns, record["completion"])
        assert ids == prompt + completion + [end]
        assert labels == [-100] * len(prompt) + completion + [end]


def _chat_expected(ns: dict[str, Any], messages: list[dict[str, str]]) -> tuple[list, list]:
    """The template's tokens turn by turn, written out independently of the script: a role
    marker, the words, <|end|>; an assistant turn's words and <|end|> are its targets."""
    tokenizer = ns["load_tokenizer"]()
    ids, labels = [], []
    for message in messages:
        marker = tokenizer.convert_tokens_to_ids(f"<|{message['role']}|>")
        words = [*_tokens(ns, message["content"]), tokenizer.convert_tokens_to_ids("<|end|>")]
        ids += [marker, *words]
        labels += [-100] + (words if message["role"] == "assistant" else [-100] * len(words))
    return ids, labels


def test_chat_labels_are_exactly_the_assistant_turns(tmp_path: Path) -> None:
    ns = _script(tmp_path / "s", [{"messages": CHAT}], format="chat")
    ids, labels = ns["tokenize_record"](ns["load_tokenizer"](), {"messages": CHAT})
    assert (ids, labels) == _chat_expected(ns, CHAT)
    assert sum(label != -100 for label in labels) == 2 + 1 + 2 + 1  # "three ." "four !" + ends


def test_a_template_that_is_not_its_turns_in_order_exits(tmp_path: Path) -> None:
    ns = _script(tmp_path / "s", [{"messages": CHAT}], format="chat")
    tokenizer = ns["load_tokenizer"]()
    # Renders the last message first: a prefix's rendering is no prefix of the whole.
    tokenizer.chat_template = (
        "{% for m in messages | reverse %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> "
        "{% endfor %}"
    )
    with pytest.raises(SystemExit, match="assistant tokens cannot be located"):
        ns["tokenize_record"](tokenizer, {"messages": CHAT})


def test_truncation_cuts_labels_with_the_tokens_and_an_all_cut_row_is_no_nan(
    tmp_path: Path,
) -> None:
    records = [{"prompt": "what is two plus one ?", "completion": "three ."}]
    ns = _script(tmp_path / "s", records, seq_len=7, format="completion")
    tokenizer = ns["load_tokenizer"]()
    full_ids, full_labels = ns["tokenize_record"](tokenizer, records[0])
    (row,) = ns["build_dataset"](None)
    assert row["input_ids"].tolist() == full_ids[:7]
    assert row["labels"].tolist() == full_labels[:7]  # "three" survives, "." and the end do not
    assert (row["labels"] != -100).sum() == 1
    assert "attention_mask" not in row  # right padding under causal attention needs none
    # A prompt longer than the row: every target is cut.
    ns = _script(tmp_path / "cut", records, seq_len=4, format="completion")
    (row,) = ns["build_dataset"](None)
    assert (row["labels"] == -100).all()
    batch = ns["default_collate"]([row, row])
    assert ns["count_targets"](batch) == 0
    ns["seed_everything"](1)
    model = ns["build_model"]()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss, _ = ns["train_step"](model, optimizer, [batch], 0, torch.device("cpu"))
    assert loss == 0.0 and not math.isnan(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_truncation_drop_leaves_long_examples_out(tmp_path: Path, capsys) -> None:
    ns = _script(tmp_path / "s", COMPLETIONS, seq_len=9, format="completion", truncation="drop")
    rows = ns["build_dataset"](None)
    assert len(rows) == 2  # "count up from two" + six words + end is 11 tokens
    assert "left out 1 examples longer than 9 tokens" in capsys.readouterr().out


def test_packed_rows_keep_masks_and_never_target_a_documents_first_token(tmp_path: Path) -> None:
    ns = _script(tmp_path / "s", COMPLETIONS, seq_len=8, format="completion", packing=True)
    tokenizer = ns["load_tokenizer"]()
    documents = [ns["tokenize_record"](tokenizer, r) for r in COMPLETIONS]
    ids, labels, starts = [], [], []
    for doc_ids, doc_labels in documents:
        starts += [len(ids)] * len(doc_ids)
        ids += doc_ids
        labels += [-100, *doc_labels[1:]]
    rows = ns["build_dataset"](None)
    assert len(rows) == math.ceil(len(ids) / 8)
    fill = 8 * len(rows) - len(ids)
    starts += [len(ids)] * fill  # the padding: a document of its own
    ids += [tokenizer.pad_token_id] * fill
    labels += [-100] * fill
    for i, row in enumerate(rows):
        window = range(8 * i, 8 * (i + 1))
        assert row["input_ids"].tolist() == ids[8 * i : 8 * (i + 1)]
        assert row["labels"].tolist() == labels[8 * i : 8 * (i + 1)]
        # Positions count from each document's start, or from the row's start for a document
        # the previous row cut.
        assert row["position_ids"].tolist() == [g - max(starts[g], 8 * i) for g in window]
        assert set(row) == {"input_ids", "labels", "position_ids"}


def test_packed_documents_do_not_see_each_other(tmp_path: Path) -> None:
    """The script's packed row through its own model: the second document's logits are the
    same as when it runs alone, so the first one is invisible to it."""
    records = COMPLETIONS[:2]
    ns = _script(tmp_path / "s", records, seq_len=20, format="completion", packing=True)
    (row,) = ns["build_dataset"](None)
    tokenizer = ns["load_tokenizer"]()
    first, second = (ns["tokenize_record"](tokenizer, r)[0] for r in records)
    ns["seed_everything"](1)
    model = ns["build_model"]().eval()
    with torch.no_grad():  # without a cache, as the script calls it: a cache hides packing
        batch = {k: v[None] for k, v in row.items()}
        logits = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        packed = logits[0, len(first) : len(first) + len(second)]
        alone = model(input_ids=torch.tensor([second]), use_cache=False).logits[0]
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)


def test_validation_split_is_seeded_disjoint_and_complete(tmp_path: Path) -> None:
    records = [{"text": " ".join(["the cat sat"] * (1 + i % 3)), "n": i} for i in range(60)]
    ns = _script(tmp_path / "s", records, validation={"split": 0.25})
    train, held = ns["build_dataset"](None), ns["build_validation"](None)
    assert 0 < len(held) < len(train) and len(train) + len(held) == 60
    # The same records in every run (a draw per record seeded by train.seed).
    assert [r["input_ids"].tolist() for r in held] == [
        r["input_ids"].tolist() for r in ns["build_validation"](None)
    ]
    chosen = [i for i in range(60) if ns["held_out"](i)]
    assert len(chosen) == len(held)
    _set(ns, SEED=ns["SEED"] + 1)  # another seed, another split
    assert chosen != [i for i in range(60) if ns["held_out"](i)]


def test_validation_path_and_none(tmp_path: Path) -> None:
    ns = _script(tmp_path / "none", COMPLETIONS, format="completion")
    assert ns["build_validation"](None) is None
    folder = tmp_path / "file"
    ns = _script(folder, COMPLETIONS, format="completion", validation={"path": "val.jsonl"})
    _write_jsonl(folder / "val.jsonl", COMPLETIONS[:1])
    (row,) = ns["build_validation"](None)
    assert len(ns["build_dataset"](None)) == 3
    _, labels = ns["tokenize_record"](ns["load_tokenizer"](), COMPLETIONS[0])
    assert row["labels"].tolist()[: len(labels)] == labels


def _save(folder: Path, source: str) -> str:
    import datasets

    table = datasets.Dataset.from_list(COMPLETIONS)
    if source == "json":
        (folder / "train.json").write_text(json.dumps(COMPLETIONS))
        return "train.json"
    if source == "csv":
        table.to_csv(str(folder / "train.csv"), index=False)
        return "train.csv"
    if source == "parquet":
        table.to_parquet(str(folder / "train.parquet"))
        return "train.parquet"
    datasets.DatasetDict({"train": table}).save_to_disk(str(folder / "saved"))
    return "saved"


@pytest.mark.parametrize("source", ["json", "csv", "parquet", "saved"])
def test_every_source_reads_the_same_rows_as_jsonl(tmp_path: Path, source: str) -> None:
    reference = _script(tmp_path / "jsonl", COMPLETIONS, format="completion")["build_dataset"](None)
    folder = tmp_path / source
    ns = _script(folder, [], format="completion")
    builder = {"json": "json", "csv": "csv", "parquet": "parquet", "saved": None}[source]
    _set(ns, DATA_PATH=_save(folder, source), DATASET_BUILDER=builder)
    rows = ns["build_dataset"](None)
    assert len(rows) == len(reference)
    for row, expected in zip(rows, reference, strict=True):
        assert all(torch.equal(row[k], expected[k]) for k in expected)


def test_script_constants_name_the_builder_per_source(tmp_path: Path) -> None:
    from freezegen.generate.data import data_constants
    from freezegen.spec import load_spec

    spec = load_spec(tiny_spec(tmp_path, data={"source": "saved", "path": "d", "tokenizer": "t"}))
    assert "DATASET_BUILDER = None" in data_constants(spec, str, None)
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"source": "csv"})})
    assert 'DATASET_BUILDER = "csv"' in data_constants(spec, str, None)


def test_streamed_windows_resume_exactly(tmp_path: Path) -> None:
    records = [{"text": " ".join(["the cat", "sat on", "a mat"][: 1 + i % 3])} for i in range(23)]
    ns = _script(tmp_path / "s", records, seq_len=8, streaming=True)
    _set(ns, SHUFFLE_BUFFER=4, GRAD_ACCUM_STEPS=3)
    stream = ns["DataStream"](ns["build_dataset"](None))
    seen = []
    for _ in range(14):  # more than three epochs of 23 rows in windows of up to 6
        seen.append((stream.state_dict(), stream.next_window()))
    assert {state["epoch"] for state, _ in seen} == {0, 1, 2, 3}
    for index in (1, 4, 5, 9):
        resumed = ns["DataStream"](ns["build_dataset"](None))
        resumed.load_state_dict(seen[index][0])
        for _, window in seen[index:]:
            again = resumed.next_window()
            assert len(again) == len(window)
            for a, b in zip(again, window, strict=True):
                assert all(torch.equal(a[k], b[k]) for k in b)
    # Each epoch is every row once, in a shuffled order that differs between epochs.
    epochs: dict[int, list] = {}
    following = [*seen[1:], (stream.state_dict(), None)]
    for (_, window), (after, _) in zip(seen, following, strict=True):
        for batch in window:  # a window lies in one epoch: the one it leaves the stream in
            epochs.setdefault(after["epoch"], []).extend(batch["input_ids"].tolist())
    assert sorted(epochs[0]) == sorted(epochs[1]) and epochs[0] != epochs[1]


@pytest.mark.parametrize(
    "data",
    [
        {"format": "completion"},
        {"format": "completion", "packing": True},
        {"format": "chat"},
        {"format": "chat", "packing": True, "streaming": True},
    ],
    ids=["padded", "packed", "chat", "chat-packed-streamed"],
)
def test_batches_have_the_shape_the_estimate_assumes(tmp_path: Path, data: dict) -> None:
    """Both estimators take micro_batch_size x seq_len tokens per micro-batch (the analytic
    per-token terms times b * s, the trace's torch.ones(b, s)): every micro-batch the script
    builds has that shape, padding and packing alike; padded rows carry no attention mask
    (the one-sequence-per-row batch the estimate models), packed rows their position_ids."""
    records = [{"messages": CHAT}] * 5 if data["format"] == "chat" else COMPLETIONS * 3
    ns = _script(tmp_path / "s", records, seq_len=12, **data)
    dataset = ns["build_dataset"](None)
    stream = ns["DataStream"](dataset)
    for _ in range(4):
        for batch in stream.next_window():
            assert batch["input_ids"].shape[1] == 12
            assert batch["input_ids"].shape[0] <= ns["MICRO_BATCH_SIZE"]
            assert "attention_mask" not in batch
            assert ("position_ids" in batch) == bool(data.get("packing"))
