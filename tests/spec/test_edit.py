"""Writing values into a spec's text (``lint --fix``, ``fit``): only the value changes; comments,
key order, quoting and flow or block style around it survive byte for byte."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freezegen.spec._yaml import parse_document
from freezegen.spec.edit import Edit, EditError, apply_edits

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/freezegen.yaml"))

COMMENTED = """\
# yaml-language-server: $schema=../schemas/freezegen.schema.json
# A spec with comments everywhere a person puts them.
version: 1
model:
  preset: llama-3-8b   # the base we fine-tune
  attention: eager     # slow, and big at long sequences

batch: {micro_batch_size: 8, seq_len: 2048}  # per GPU
optimizer:
  name: adamw
  lr: 2.0e-5

  # decay only on matrices (see the design doc)
  weight_decay: 0.01
hardware: {gpu: 'A10G'}   # the card we have
# the end
"""


def _changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:])
    return removed, added


@pytest.mark.parametrize(
    ("edits", "removed", "added"),
    [
        (
            [Edit(("model", "attention"), "sdpa")],
            ["  attention: eager     # slow, and big at long sequences"],
            ["  attention: sdpa     # slow, and big at long sequences"],
        ),
        (
            [Edit(("batch", "micro_batch_size"), 2), Edit(("batch", "grad_accum_steps"), 4)],
            ["batch: {micro_batch_size: 8, seq_len: 2048}  # per GPU"],
            ["batch: {micro_batch_size: 2, seq_len: 2048, grad_accum_steps: 4}  # per GPU"],
        ),
        ([Edit(("optimizer", "implementation"), "fused")], [], ["  implementation: fused"]),
        ([Edit(("activation_checkpointing",), True)], [], ["activation_checkpointing: true"]),
        (
            [Edit(("freeze", "layers"), {"first": 8})],
            [],
            ["freeze:", "  layers: {first: 8}"],
        ),
        (
            [Edit(("hardware", "gpu"), "A100-80GB")],
            ["hardware: {gpu: 'A10G'}   # the card we have"],
            ["hardware: {gpu: 'A100-80GB'}   # the card we have"],
        ),
    ],
)
def test_only_the_value_changes(edits: list[Edit], removed: list[str], added: list[str]):
    new = apply_edits(COMMENTED, edits)
    assert _changed_lines(COMMENTED, new) == (removed, added)
    again = apply_edits(new, edits)
    assert again == new  # a second fix changes nothing


def test_a_new_key_goes_after_the_last_entry_of_its_mapping_not_after_the_next_comment():
    new = apply_edits(COMMENTED, [Edit(("optimizer", "implementation"), "fused")])
    lines = new.splitlines()
    assert lines[lines.index("  weight_decay: 0.01") + 1] == "  implementation: fused"
    assert new.endswith("# the end\n")


def test_line_endings_and_a_byte_order_mark_are_kept():
    text = "\ufeffversion: 1\r\nmodel:\r\n  preset: gpt2  # x\r\nbatch: {micro_batch_size: 8}\r\n"
    new = apply_edits(text, [Edit(("model", "attention"), "sdpa"), Edit(("precision",), "bf16")])
    assert new == (
        "\ufeffversion: 1\r\nmodel:\r\n  preset: gpt2  # x\r\n  attention: sdpa\r\n"
        "batch: {micro_batch_size: 8}\r\nprecision: bf16\r\n"
    )


@pytest.mark.parametrize(
    ("text", "edit", "expected"),
    [
        ("model: {}\n", Edit(("model", "preset"), "gpt2"), "model: {preset: gpt2}\n"),
        (
            "model: {preset: gpt2,}\n",
            Edit(("model", "attention"), "sdpa"),
            "model: {preset: gpt2, attention: sdpa}\n",
        ),
        (
            "model: {\n  preset: gpt2\n}\n",
            Edit(("model", "attention"), "sdpa"),
            "model: {\n  preset: gpt2, attention: sdpa\n}\n",
        ),
        (
            'model: {preset: "gpt2"}\n',
            Edit(("model", "preset"), "gpt2-xl"),
            'model: {preset: "gpt2-xl"}\n',
        ),
        ("a: 1", Edit(("b",), 2), "a: 1\nb: 2\n"),
    ],
)
def test_flow_mappings_and_quoting_keep_their_style(text: str, edit: Edit, expected: str):
    assert apply_edits(text, [edit]) == expected


@pytest.mark.parametrize("value", ["a b", "true", "null", "1.5", "", "x: y", "#", "é"])
def test_strings_that_would_read_as_something_else_are_quoted(value: str):
    new = apply_edits("name: x\n", [Edit(("name",), value)])
    doc, problems = parse_document(new, "t.yaml")
    assert not problems and doc.data == {"name": value}


@pytest.mark.parametrize(
    ("text", "edit", "why"),
    [
        ("base: &b {lr: 1}\nopt: *b\n", Edit(("opt", "lr"), 2), "alias"),
        ("base: &b {lr: 1}\nopt: *b\n", Edit(("base", "lr"), 2), "alias, an anchor"),
        ("lr: !!float 1\n", Edit(("lr",), 2.0), "tagged"),
        ("model:\n  preset: gpt2\n", Edit(("model",), "gpt2"), "block mapping"),
        ("model: gpt2\n", Edit(("model", "preset"), "gpt2"), "not a mapping"),
        ("a: [1, 2\n", Edit(("a",), 1), "does not parse"),
    ],
)
def test_what_cannot_be_written_faithfully_is_refused(text: str, edit: Edit, why: str):
    with pytest.raises(EditError, match=why):
        apply_edits(text, [edit])


_KEYS = st.sampled_from(
    [
        ("batch", "micro_batch_size"),
        ("batch", "grad_accum_steps"),
        ("model", "attention"),
        ("optimizer", "implementation"),
        ("activation_checkpointing",),
        ("precision",),
        ("freeze", "layers"),
        ("train", "max_steps"),
        ("hardware", "reserve_gib"),
    ]
)
_VALUES = st.one_of(
    st.integers(1, 4096),
    st.booleans(),
    st.sampled_from(["sdpa", "fused", "bf16", "0-5", "A10G"]),
    st.floats(0.001, 100.0, allow_nan=False),
    st.fixed_dictionaries({"first": st.integers(0, 48)}),
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
@given(edits=st.lists(st.builds(Edit, _KEYS, _VALUES), min_size=1, max_size=4))
def test_every_example_takes_any_edit_and_keeps_everything_else(example: Path, edits):
    text = example.read_text(encoding="utf-8")
    new = apply_edits(text, edits)
    before, _ = parse_document(text, "a.yaml")
    after, problems = parse_document(new, "b.yaml")
    assert before is not None and after is not None and not problems
    expected = before.data
    for edit in edits:
        node = expected
        for key in edit.loc[:-1]:
            node = node.setdefault(key, {})
        node[edit.loc[-1]] = edit.value
    assert after.data == expected
    # the only lines changed are those holding an edited key; every other one is still there
    removed, _ = _changed_lines(text, new)
    assert all(any(f"{k}:" in line for e in edits for k in e.loc) for line in removed)
    assert len(removed) <= len(edits)
