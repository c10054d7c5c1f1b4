"""What a user relies on from the spec loader: every problem at once, each at its line:column.

Every assertion names the code, the line and the column, because "FG002 somewhere in the file"
is not what the loader promises.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from freezegen.diagnostics import Diagnostic, SpecError
from freezegen.spec import LoadResult, load, load_spec, load_text

MINIMAL = """\
version: 1
model: {preset: gpt2}
batch: {micro_batch_size: 2, seq_len: 128}
"""


def check(text: str) -> LoadResult:
    """Load dedented ``text``; the loader must never raise for a user's mistake."""
    return load_text(textwrap.dedent(text), "spec.yaml")


def where(result: LoadResult) -> list[tuple[str, int, int]]:
    return sorted((d.code, d.line, d.col) for d in result.diagnostics)


def only(result: LoadResult) -> Diagnostic:
    assert len(result.diagnostics) == 1, result.diagnostics
    return result.diagnostics[0]


def test_minimal_spec_is_valid() -> None:
    result = check(MINIMAL)
    assert result.ok and result.diagnostics == []
    assert result.spec is not None and result.spec.batch.seq_len == 128


# --- unknown keys --------------------------------------------------------------------------


def test_unknown_key_is_located_with_did_you_mean() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch:
          micro_batchsize: 2
          seq_len: 128
        """)
    d = only(result)  # no second "missing micro_batch_size": the typo already says it
    assert (d.code, d.line, d.col) == ("FG002", 4, 3)
    assert "micro_batchsize" in d.message
    assert d.fix == "did you mean 'micro_batch_size'?"
    assert result.spec is None


def test_unknown_key_in_flow_mapping_inside_a_union() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        freeze:
          layers: {frist: 6}
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG002", 5, 12)
    assert "'frist'" in d.message and "freeze.layers" in d.message
    assert d.fix == "did you mean 'first'?"


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    d = only(check(MINIMAL + "zzz: 1\n"))
    assert (d.code, d.line, d.col) == ("FG002", 4, 1)
    assert d.fix is not None and "batch" in d.fix and "precision" in d.fix


# --- duplicate keys ------------------------------------------------------------------------


def test_duplicate_key_block_style() -> None:
    result = check(MINIMAL + "precision: bf16\noptimizer: {lr: 2e-5}\nprecision: fp16\n")
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG003", 6, 1)
    assert "'precision'" in d.message and "line 4" in d.message


def test_duplicate_key_flow_style() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2, preset: gpt2-medium}
        batch: {micro_batch_size: 2, seq_len: 128}
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG003", 2, 23)
    assert "'preset'" in d.message


def test_duplicate_key_nested_block_style_keeps_the_first_value() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch:
          micro_batch_size: 2
          seq_len: 128
          micro_batch_size: 4
        """)
    assert where(result) == [("FG003", 6, 3)]
    assert result.document is not None
    assert result.document.data["batch"]["micro_batch_size"] == 2


def test_keys_that_differ_only_in_yaml_spelling_are_duplicates() -> None:
    result = check(MINIMAL + "null: 1\n~: 2\n")
    dup = [d for d in result.diagnostics if d.code == "FG003"]
    assert [(d.line, d.col) for d in dup] == [(5, 1)]
    assert "'null'" in dup[0].message


# --- wrong types and values ----------------------------------------------------------------


def test_wrong_type_is_located_at_the_value() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: [128]}
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG004", 3, 39)
    assert "batch.seq_len" in d.message and "integer" in d.message


def test_out_of_range_micro_batch_size() -> None:
    d = only(
        check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 0, seq_len: 128}
        """)
    )
    assert (d.code, d.line, d.col) == ("FG004", 3, 27)
    assert "greater than 0" in d.message and "got 0" in d.message


def test_invalid_choice_suggests_the_close_one() -> None:
    d = only(check(MINIMAL + "precision: bf17\n"))
    assert (d.code, d.line, d.col) == ("FG004", 4, 12)
    assert d.fix == "did you mean 'bf16'?"


def test_missing_required_key_is_located_at_the_parent_key() -> None:
    result = check("""\
        version: 1
        model:
          preset: gpt2
        precision: bf16
        batch:
          micro_batch_size: 2
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG005", 5, 1)
    assert "'seq_len'" in d.message and "batch" in d.message


def test_missing_top_level_key_is_located_at_the_first_key() -> None:
    result = check("""\
        # a comment first
        version: 1
        model: {preset: gpt2}
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG005", 2, 1)
    assert "'batch'" in d.message


# --- YAML syntax ---------------------------------------------------------------------------


def test_yaml_syntax_error_is_located_and_not_raised() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2
        batch: {micro_batch_size: 2, seq_len: 128}
        """)
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG001", 3, 6)
    assert "YAML syntax error" in d.message and "line 2" in d.message
    assert result.document is None and result.spec is None


def test_syntax_error_at_end_of_input_stays_inside_the_file() -> None:
    d = only(load_text("version: 1\nmodel: {preset: gpt2", "spec.yaml"))
    # libyaml reports the end of input one line past a last line without a newline
    assert (d.code, d.line, d.col) == ("FG001", 2, 21)


def test_empty_value_at_end_of_input_stays_inside_the_file() -> None:
    result = load_text("version: 1\nmodel: {preset: gpt2}\nbatch:", "spec.yaml")
    assert where(result) == [("FG004", 3, 7)]
    result = load_text("? version", "spec.yaml")
    assert ("FG004", 1, 10) in where(result)


def test_bom_in_a_str_is_not_a_column() -> None:
    d = only(load_text("\ufeffversion: 1\nmodel: {preset: gpt2}\nbatch: []\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG004", 3, 8)
    d = only(load_text("\ufeff[", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG001", 1, 2)


def test_unterminated_quote_says_where_it_started() -> None:
    d = only(check("version: 1\nmodel: {preset: 'gpt2}\nbatch: {}\n"))
    assert (d.code, d.line, d.col) == ("FG001", 3, 10)  # end of input, inside the file
    assert "started on line 2" in d.message


def test_tab_indentation_gets_a_hint() -> None:
    d = only(load_text("version: 1\nmodel:\n\tpreset: gpt2\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG001", 3, 1)
    assert "tabs" in d.message


def test_control_character_is_located() -> None:
    d = only(load_text("version: 1\nmodel: {preset: gpt2}\x07\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG001", 2, 22)
    assert "#x0007" in d.message


def test_control_character_column_counts_characters_not_bytes() -> None:
    d = only(load_text("# héllo wörld\nab: é\x1b\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG001", 2, 6)


# --- all problems at once ------------------------------------------------------------------


def test_every_problem_is_reported_in_one_run() -> None:
    result = check("""\
        version: 1
        modle: {preset: gpt2}
        batch: {micro_batch_size: 0, seq_len: 128}
        compile: yes
        precision: bf17
        optimizer: {lr: -1}
        """)
    assert where(result) == [
        ("FG002", 2, 1),  # modle -> model (and no separate "model is missing")
        ("FG004", 3, 27),  # micro_batch_size: 0
        ("FG004", 4, 10),  # compile: yes
        ("FG004", 5, 12),  # precision: bf17
        ("FG004", 6, 17),  # lr: -1
    ]


def test_duplicate_keys_and_schema_errors_come_together() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 0, seq_len: 128}
        compile: false
        compile: true
        """)
    assert where(result) == [("FG003", 5, 1), ("FG004", 3, 27)]


# --- YAML 1.2 scalars ----------------------------------------------------------------------


def test_exponent_without_dot_is_a_float() -> None:
    result = check(MINIMAL + "optimizer: {lr: 2e-5}\n")
    assert result.ok, result.diagnostics
    assert result.document is not None
    raw = result.document.data["optimizer"]["lr"]
    assert isinstance(raw, float) and raw == 2e-5
    assert result.spec is not None and result.spec.optimizer.lr == 2e-5


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0o17", 15),
        ("0x1F", 31),
        ("-12", -12),
        ("+3", 3),
        ("1.5", 1.5),
        (".5", 0.5),
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("yes", "yes"),
        ("on", "on"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("'12'", "12"),
        ('"true"', "true"),
        ("!!float 1", 1.0),
        ("!!str 12", "12"),
        ("!!int '7'", 7),
    ],
)
def test_core_schema_resolution(text: str, value: object) -> None:
    result = load_text(f"x: {text}\n", "spec.yaml")
    assert result.document is not None
    got = result.document.data["x"]
    assert got == value and type(got) is type(value)


def test_yes_is_a_string_so_a_boolean_field_rejects_it_with_a_hint() -> None:
    d = only(check(MINIMAL + "compile: yes\n"))
    assert (d.code, d.line, d.col) == ("FG004", 4, 10)
    assert "'yes'" in d.message
    assert d.fix is not None and "true or false" in d.fix


def test_quoted_number_is_not_an_integer() -> None:
    d = only(
        check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: "16", seq_len: 128}
        """)
    )
    assert (d.code, d.line, d.col) == ("FG004", 3, 27)
    assert "integer" in d.message and "'16'" in d.message


def test_bool_is_not_an_integer() -> None:
    d = only(
        check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: true, seq_len: 128}
        """)
    )
    assert (d.code, d.line, d.col) == ("FG004", 3, 27)


def test_mismatched_explicit_tag_is_an_error() -> None:
    d = only(check(MINIMAL + "compile: !!bool yes\n"))
    assert (d.code, d.line, d.col) == ("FG004", 4, 10)


def test_scalar_tag_on_a_collection_is_an_error() -> None:
    d = only(check(MINIMAL + "freeze: {patterns: !!str [a]}\n"))
    assert (d.code, d.line, d.col) == ("FG004", 4, 20)
    assert "!!str" in d.message and "sequence" in d.message


def test_huge_integer_does_not_crash() -> None:
    digits = "9" * 5000  # beyond Python's int() digit limit
    result = check(MINIMAL + f"train: {{seed: {digits}}}\n")
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG004", 4, 15)
    assert len(d.message) < 400


def test_nul_escape_is_reported_and_never_reaches_the_spec() -> None:
    result = check(MINIMAL + 'checkpoint: {dir: "ck\\0pt"}\n')
    assert where(result) == [("FG004", 4, 19)]
    assert result.spec is not None and "\x00" not in str(result.spec.checkpoint.dir)


# --- anchors, aliases, merges --------------------------------------------------------------


def test_anchors_and_aliases_for_legitimate_reuse() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        freeze:
          patterns: &frozen ["*.ln_f.*", "*.wpe.*"]
          schedule:
            - {at_step: 100, unfreeze: {patterns: *frozen}}
        """)
    assert result.ok, result.diagnostics
    assert result.spec is not None
    assert result.spec.freeze.schedule[0].unfreeze.patterns == ["*.ln_f.*", "*.wpe.*"]


def test_merge_keys_with_override() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        freeze:
          schedule:
            - &step {at_step: 100, unfreeze: {layers: "4-5"}}
            - <<: *step
              at_step: 200
            - {<<: [*step], at_step: 300, unfreeze: {layers: "0-1"}}
        """)
    assert result.ok, result.diagnostics
    assert result.spec is not None
    steps = result.spec.freeze.schedule
    assert [s.at_step for s in steps] == [100, 200, 300]
    assert steps[1].unfreeze.layers == "4-5" and steps[2].unfreeze.layers == "0-1"


def test_error_in_an_overriding_key_is_located_at_the_override() -> None:
    # The merged value comes from line 6; the value actually used is on line 8.
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        freeze:
          schedule:
            - &step {at_step: 100, unfreeze: {layers: "4-5"}}
            - <<: *step
              at_step: -1
        """)
    assert where(result) == [("FG004", 8, 16)]


def test_error_in_a_merged_value_is_located_at_its_anchor() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        freeze:
          schedule:
            - &step {at_step: -5, unfreeze: {layers: "4-5"}}
            - <<: *step
              unfreeze: {layers: "0-1"}
        """)
    # schedule[0] and schedule[1] both hold the bad value written once at 6:23
    assert {(d.code, d.line, d.col) for d in result.diagnostics} == {("FG004", 6, 23)}


def test_merge_of_a_scalar_is_an_error() -> None:
    d = only(check(MINIMAL + "train: {<<: [1]}\n"))
    assert (d.code, d.line, d.col) == ("FG004", 4, 14)


def test_unknown_alias_is_a_syntax_error() -> None:
    result = check(MINIMAL + "compile: *nope\n")
    assert [d.code for d in result.diagnostics] == ["FG001"]
    assert "nope" in result.diagnostics[0].message


# --- relative paths ------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project" / "specs"
    folder.mkdir(parents=True)
    spec = folder / "freezegen.yaml"
    spec.write_text(
        textwrap.dedent("""\
        version: 1
        model: {hf_config: ./config.json}
        batch: {micro_batch_size: 2, seq_len: 128}
        checkpoint: {dir: ../ckpt}
        """),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = load(spec)
    assert result.spec is not None, result.diagnostics
    assert result.spec.model.hf_config == folder / "config.json"
    assert result.spec.checkpoint.dir == folder / "../ckpt"
    assert result.spec.checkpoint.dir.resolve() == (tmp_path / "project" / "ckpt").resolve()


def test_default_checkpoint_dir_is_next_to_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(MINIMAL, encoding="utf-8")
    assert load_spec(spec).checkpoint.dir == tmp_path / "checkpoints"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    target = tmp_path / "abs" / "ck"
    spec.write_text(MINIMAL + f"checkpoint: {{dir: '{target}'}}\n", encoding="utf-8")
    assert load_spec(spec).checkpoint.dir == target


def test_tilde_of_an_unknown_user_is_a_diagnostic() -> None:
    result = check("""\
        version: 1
        model: {hf_config: ~no-such-user-xyz/config.json}
        batch: {micro_batch_size: 2, seq_len: 128}
        """)
    assert [d.code for d in result.diagnostics] == ["FG004"]


# --- document shape ------------------------------------------------------------------------


def test_multiple_documents_are_an_error() -> None:
    result = check(MINIMAL + "---\nversion: 1\n")
    d = only(result)
    assert (d.code, d.line, d.col) == ("FG001", 4, 1)
    assert "one YAML document" in d.message


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "---\n", "---\n...\n", "~\n"])
def test_empty_file_is_an_error(text: str) -> None:
    d = only(load_text(text, "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG004", 1, 1)
    assert "empty" in d.message


def test_empty_file_on_disk(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_bytes(b"")
    d = only(load(spec))
    assert (d.code, d.line, d.col) == ("FG004", 1, 1)


def test_top_level_list_is_an_error() -> None:
    d = only(load_text("# header\n- version: 1\n- model: {preset: gpt2}\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG004", 2, 1)
    assert "mapping" in d.message and "list" in d.message


def test_top_level_scalar_is_an_error() -> None:
    d = only(load_text("hello\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG004", 1, 1)


def test_collection_as_mapping_key_is_an_error() -> None:
    d = only(load_text("? [a, b]\n: 1\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG004", 1, 3)


# --- files and encodings -------------------------------------------------------------------


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load(spec).ok


def test_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_bytes(MINIMAL.encode("utf-16"))
    d = only(load(spec))
    assert (d.code, d.line, d.col) == ("FG006", 1, 1)
    assert "UTF-16" in d.message


def test_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    d = only(load(tmp_path / "nope.yaml"))
    assert (d.code, d.line, d.col) == ("FG006", 1, 1)


def test_lone_surrogate_in_a_str_is_a_diagnostic() -> None:
    d = only(load_text("version: 1\nmodel: \ud800\n", "spec.yaml"))
    assert (d.code, d.line, d.col) == ("FG006", 2, 8)


def test_bytes_input_is_decoded() -> None:
    assert load_text(MINIMAL.encode(), "spec.yaml").ok


# --- load_spec -----------------------------------------------------------------------------


def test_load_spec_raises_with_every_problem_sorted(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_text("version: 2\nmodel: {preset: gpt3}\nbatch: {seq_len: 0}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    got = [(d.code, d.line, d.col) for d in info.value.diagnostics]
    assert got == sorted(got, key=lambda t: (t[1], t[2]))
    assert len(got) == 4  # version, preset, micro_batch_size missing, seq_len range
    assert f"{spec}:1:10: FG004" in str(info.value)


def test_resume_path_resolves_next_to_the_spec_and_keywords_stay(tmp_path: Path) -> None:
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(MINIMAL + "checkpoint: {resume: ckpt/step-10.pt}\n", encoding="utf-8")
    assert load_spec(spec).checkpoint.resume == str(tmp_path / "ckpt" / "step-10.pt")
    spec.write_text(MINIMAL + "checkpoint: {resume: never}\n", encoding="utf-8")
    assert load_spec(spec).checkpoint.resume == "never"


def test_resume_of_an_unknown_user_is_a_diagnostic() -> None:
    result = check("""\
        version: 1
        model: {preset: gpt2}
        batch: {micro_batch_size: 2, seq_len: 128}
        checkpoint: {resume: ~no-such-user-xyz/c.pt}
        """)
    assert [(d.code, d.line) for d in result.diagnostics] == [("FG004", 4)]


def test_python_field_names_are_not_spec_keys() -> None:
    """`except` is a Python keyword, so the model field is `except_`; only `except` is a key."""
    result = check("""\
        version: 1
        model: {preset: gpt2}
        freeze: {except_: ["*.bias"]}
        batch: {micro_batch_size: 2, seq_len: 128}
        """)
    assert [(d.code, d.line, d.fix) for d in result.diagnostics] == [
        ("FG002", 3, "did you mean 'except'?")
    ]
