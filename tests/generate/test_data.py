"""freezegen/generate/data.py: refusals (lint and generate alike), the chat-template check on a
tokenizer folder, what packing says about attention, which parts and imports a script gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freezegen.arch.families import family_for_model_type
from freezegen.generate import GenerateError, render_script
from freezegen.generate.data import chat_template_problem, check_data_supported, packing_caveat
from freezegen.lint import lint_paths
from freezegen.spec import load_spec
from tests.generate.conftest import tiny_spec
from tests.generate.tiny_tokenizer import write_tokenizer

FILES = {"source": "jsonl", "path": "t.jsonl", "tokenizer": "tok"}
CLASSIFIER = {"hf_config": "./config.json", "head": "sequence-classification"}


@pytest.mark.parametrize(
    ("sections", "loc", "words"),
    [
        ({"model": CLASSIFIER, "data": {**FILES, "format": "chat"}}, ("data", "format"), "label"),
        ({"model": CLASSIFIER, "data": {**FILES, "packing": True}}, ("data", "packing"), "mix"),
        ({"data": {**FILES, "source": "text", "format": "completion"}}, ("data", "format"), "no"),
        (
            {"data": {**FILES, "source": "text", "validation": {"split": 0.1}}},
            ("data", "validation", "split"),
            "cannot be split",
        ),
        ({"data": {**FILES, "source": "text", "streaming": True}}, ("data", "streaming"), "whole"),
        ({"data": {"source": "synthetic", "packing": True}}, ("data", "packing"), "file sources"),
        (
            {"data": {"source": "synthetic", "validation": {"split": 0.1}}},
            ("data", "validation"),
            "reads files",
        ),
    ],
)
def test_refusals_are_located_at_lint_and_generate(
    tmp_path: Path, sections: dict[str, Any], loc: tuple, words: str
) -> None:
    path = tiny_spec(tmp_path, "gpt2", **sections)
    spec = load_spec(path)
    with pytest.raises(GenerateError, match=words) as refused:
        check_data_supported(spec)
    assert refused.value.loc == loc
    with pytest.raises(GenerateError, match=words):
        render_script(spec, path, tmp_path)
    found = [d for d in lint_paths([path]).diagnostics if d.code == "FG130"]
    assert len(found) == 1 and words in found[0].message


def test_chat_template_found_in_each_place_transformers_reads(tmp_path: Path) -> None:
    folder = write_tokenizer(tmp_path / "tok")
    assert chat_template_problem(folder) is None  # chat_template.jinja
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink()
    assert "no chat template" in chat_template_problem(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    assert chat_template_problem(folder) is None
    (folder / "tokenizer.json").unlink()
    assert "no tokenizer.json" in chat_template_problem(folder)
    assert chat_template_problem(tmp_path / "missing") is None  # FG112 reports it
    assert chat_template_problem(tmp_path / ("x" * 300)) is None  # too long a name: FG112 too


def test_chat_without_a_template_is_fg131_at_the_tokenizer(tmp_path: Path) -> None:
    write_tokenizer(tmp_path / "tok", chat_template=None)
    (tmp_path / "t.jsonl").write_text("{}\n")
    path = tiny_spec(tmp_path, data={**FILES, "format": "chat"})
    (found,) = [d for d in lint_paths([path]).diagnostics if d.code == "FG131"]
    assert "no chat template" in found.message
    assert path.read_text().splitlines()[found.line - 1].lstrip().startswith("tokenizer:")
    with pytest.raises(GenerateError, match="no chat template"):
        render_script(load_spec(path), path, tmp_path)


def test_a_missing_validation_file_is_fg112(tmp_path: Path) -> None:
    path = tiny_spec(tmp_path, data={**FILES, "validation": {"path": "nope.jsonl"}})
    found = [d for d in lint_paths([path]).diagnostics if d.code == "FG112"]
    assert any("validation data not found" in d.message for d in found)


@pytest.mark.parametrize("split", [0, 1, 1.5, -0.1])
def test_a_split_outside_zero_one_is_refused(tmp_path: Path, split: float) -> None:
    path = tiny_spec(tmp_path, data={**FILES, "validation": {"split": split}})
    assert any(d.code == "FG004" for d in lint_paths([path]).diagnostics)


def test_validation_takes_path_or_split(tmp_path: Path) -> None:
    both = {"path": "t.jsonl", "split": 0.1}
    path = tiny_spec(tmp_path, data={**FILES, "validation": both})
    assert any("exactly one of path and split" in d.message for d in lint_paths([path]).diagnostics)


def test_packing_caveat_names_factory_bert_and_unknown(tmp_path: Path) -> None:
    spec = load_spec(tiny_spec(tmp_path, data={**FILES, "packing": True}))
    gpt2, bert = family_for_model_type("gpt2"), family_for_model_type("bert")
    assert packing_caveat(spec, gpt2) is None
    assert "bert" in packing_caveat(spec, bert)
    assert "does not know" in packing_caveat(spec, None)
    factory = spec.model_copy(
        update={"model": spec.model.model_copy(update={"factory": "m:build"})}
    )
    assert "input_ids alone" in packing_caveat(factory, gpt2)
    unpacked = spec.model_copy(update={"data": spec.data.model_copy(update={"packing": False})})
    assert packing_caveat(unpacked, bert) is None


@pytest.mark.parametrize(
    ("data", "imports_datasets"),
    [
        ({"source": "synthetic"}, False),
        ({**FILES, "source": "text"}, False),
        (FILES, True),
        ({**FILES, "source": "parquet", "format": "completion"}, True),
    ],
)
def test_only_scripts_reading_records_import_datasets(
    tmp_path: Path, data: dict, imports_datasets: bool
) -> None:
    path = tiny_spec(tmp_path, data=data)
    text = render_script(load_spec(path), path, tmp_path)
    # Imported inside read_records, after check_requirements has checked its version.
    assert ("    import datasets  #" in text) == imports_datasets
    assert ('"distribution": "datasets"' in text) == imports_datasets
    assert "\nimport datasets\n" not in text
