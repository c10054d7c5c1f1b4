"""Every number a spec holds is bounded by what receives it (freezegen.spec.limits): past a
limit is a located FG004 error, never an OverflowError, a digit-limit ValueError, or a range
materialised past the model."""

from __future__ import annotations

import pytest

from freezegen.generate import render_script
from freezegen.lint import lint_text
from freezegen.spec import load_text
from freezegen.spec.limits import MAX_BLOCKS, MAX_COUNT, MAX_MEMORY_GIB, MAX_SEED
from freezegen.spec.models import FreezeSpec
from freezegen.spec.selectors import existing_blocks, named_blocks, parse_ranges

BASE = "version: 1\nmodel: {preset: gpt2}\nbatch: {micro_batch_size: 2, seq_len: 128}\n"
HUGE_HEX = "0x" + "f" * 50_000


def _fg004(extra: str) -> str:
    """The one FG004 message ``extra`` (the spec's fourth line) gets, located on that line."""
    found = lint_text(BASE + extra, "t.yaml")
    errors = [d for d in found if d.code == "FG004"]
    assert len(errors) == 1, found
    assert errors[0].line == 4 and errors[0].col > 1, errors[0]
    return errors[0].message


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("hardware: {memory_gib: 1e308}", "less than or equal to 1048576"),
        ("hardware: {memory_gib: 1e-300}", "greater than or equal to 0.001"),
        ("hardware: {gpu: A100-80GB, reserve_gib: 1e300}", "less than or equal to 1048576"),
        ("freeze: {layers: {first: 100000000}}", f"less than or equal to {MAX_BLOCKS}"),
        ("freeze: {layers: {last: 100000000}}", f"less than or equal to {MAX_BLOCKS}"),
        ('freeze: {layers: "0-100000000"}', f"past the limit of {MAX_BLOCKS} blocks"),
        ('freeze: {layers: "0-' + "9" * 5000 + '"}', f"past the limit of {MAX_BLOCKS} blocks"),
        ("freeze: {layers: [0, 10000]}", f"less than {MAX_BLOCKS}"),
        ('activation_checkpointing: {layers: "every-20000"}', "not a block choice"),
        ('activation_checkpointing: {layers: "3-99999"}', "past the limit"),
        ("train: {seed: 18446744073709551616}", "got an integer of 65 bits"),
        (f"train: {{seed: {HUGE_HEX}}}", "got an integer of 200000 bits"),
        (f"train: {{max_steps: {HUGE_HEX}}}", f"less than or equal to {MAX_COUNT}"),
        (f"scheduler: {{warmup_steps: {2**31}}}", f"less than or equal to {MAX_COUNT}"),
        (f"hardware: {{gpu: T4, nodes: {2**40}}}", f"less than or equal to {MAX_COUNT}"),
        ("train: {seed: -1}", "greater than or equal to 0"),
    ],
)
def test_a_number_past_its_limit_is_a_located_error(extra: str, said: str) -> None:
    assert said in _fg004(extra)


def test_a_huge_version_is_a_located_error_not_a_digit_limit_crash() -> None:
    found = lint_text(BASE.replace("version: 1", f"version: {HUGE_HEX}"), "t.yaml")
    assert [(d.code, d.line) for d in found] == [("FG004", 1)], found
    assert found[0].message.startswith("version: ")


def test_the_largest_values_are_accepted_and_render() -> None:
    text = BASE.replace("seq_len: 128", f"seq_len: {MAX_COUNT}") + (
        f"train: {{seed: {MAX_SEED}, max_steps: {MAX_COUNT}}}\n"
        f"hardware: {{memory_gib: {MAX_MEMORY_GIB}}}\n"
        f"freeze: {{layers: {{first: {MAX_BLOCKS}}}}}\n"
    )
    result = load_text(text, "t.yaml")
    assert result.spec is not None, result.diagnostics
    assert f"SEED = {MAX_SEED}" in render_script(result.spec, "t.yaml")


@pytest.mark.parametrize("path", ["os:system\n", "a..b:c", "a.:b", ".a:b", "a:b:c", "a b:c", ":b"])
def test_an_import_path_is_dotted_identifiers(path: str) -> None:
    extra = f"model: {{factory: {path!r}}}".replace("\n", "\\n").replace("'", '"')
    found = lint_text(
        f"version: 1\n{extra}\nbatch: {{micro_batch_size: 2, seq_len: 8}}\n", "t.yaml"
    )
    assert [d.code for d in found] == ["FG004"], found
    assert "is not an import path" in found[0].message


@pytest.mark.parametrize("path", ["pkg.mod:build", "a:b.c", "_m1:B_2"])
def test_valid_import_paths_load(path: str) -> None:
    text = f"version: 1\nmodel: {{factory: '{path}'}}\nbatch: {{micro_batch_size: 2, seq_len: 8}}\n"
    assert load_text(text).spec is not None


def test_ranges_are_spans_and_selections_are_clipped_to_the_model() -> None:
    assert parse_ranges("8, 0-3, 2-5,9-9") == [(0, 6), (8, 10)]
    freeze = FreezeSpec.model_validate({"layers": f"0-{MAX_BLOCKS - 1}"})
    assert freeze.indices(4) == [0, 1, 2, 3]
    assert existing_blocks(freeze.layers, 4) == [0, 1, 2, 3]
    first = FreezeSpec.model_validate({"layers": {"first": MAX_BLOCKS}}).layers
    assert named_blocks(first, 4, limit=4) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("{last: 14}", "{last: 14} selects 14 blocks, but the model has 12 blocks (0-11)"),
        ("{first: 13}", "{first: 13} selects 13 blocks, but the model has 12 blocks (0-11)"),
        ('"10-13"', "block indices 12, 13 are out of range: the model has 12 blocks (0-11)"),
    ],
)
def test_an_out_of_range_selector_is_described_as_written(layers: str, message: str) -> None:
    found = [d for d in lint_text(BASE + f"freeze: {{layers: {layers}}}\n") if d.code == "FG103"]
    assert [d.message for d in found] == [message]


@pytest.mark.parametrize(
    "extra",
    [
        "optimizer: {betas: [.nan, 0.9]}",
        "optimizer: {momentum: .nan}",
        "optimizer: {lr: .inf}",
        "train: {grad_clip: .nan}",
        "hardware: {memory_gib: .nan}",
    ],
)
def test_nan_and_infinity_are_no_number(extra: str) -> None:
    assert "must be a finite number, got" in _fg004(extra)
