"""FG110 for every family through its position kind: past a learned table an error (the
forward fails), past a rotary model's trained context a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freezegen.arch.families import all_families
from freezegen.arch.family import Family, Positions
from freezegen.diagnostics import Severity
from freezegen.lint import LintOptions
from freezegen.lint.engine import lint_text
from tests.family_configs import TINY_CONFIGS


@pytest.mark.parametrize("family", all_families(), ids=lambda f: f.name)
def test_seq_len_past_positions_by_position_kind(family: Family, tmp_path: Path) -> None:
    config = TINY_CONFIGS[family.name]
    (tmp_path / "config.json").write_text(json.dumps(config))
    positions = config.get("max_position_embeddings", config.get("n_positions"))
    body = (
        "version: 1\nmodel: {hf_config: ./config.json}\nbatch: {micro_batch_size: 1, seq_len: %d}\n"
    )
    options = LintOptions(select=("FG110",))
    assert not lint_text(body % positions, options=options, base_dir=tmp_path)
    found = lint_text(body % (positions + 1), options=options, base_dir=tmp_path)
    assert [d.code for d in found] == ["FG110"]
    learned = family.positions is Positions.LEARNED
    assert found[0].severity is (Severity.ERROR if learned else Severity.WARNING)
