"""The Hugging Face config a run builds from, for known and unknown architectures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from freezegen.arch import ArchitectureError, UnknownArchitecture, from_hf_config
from freezegen.arch.hf import hf_model
from freezegen.spec.models import ModelSpec

GPTJ = {"model_type": "gptj", "vocab_size": 64, "n_embd": 32, "n_layer": 2, "resid_pdrop": 0.1}


def test_a_model_type_no_family_knows_is_unknown_not_unreadable(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPTJ))
    with pytest.raises(UnknownArchitecture) as raised:
        from_hf_config(tmp_path)
    assert raised.value.model_type == "gptj"
    assert "'gptj' is not one freezegen models analytically" in str(raised.value)


def test_a_config_without_model_type_stays_an_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 64}))
    with pytest.raises(ArchitectureError) as raised:
        from_hf_config(tmp_path)
    assert not isinstance(raised.value, UnknownArchitecture)


def test_an_unknown_architecture_config_is_embedded_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPTJ))
    hf = hf_model(ModelSpec(hf_config=tmp_path / "config.json", dropout=0.0))
    assert (hf.model_type, hf.family, hf.vocab_size) == ("gptj", None, 64)
    # Everything but model_type travels; dropout overrides reach keys named like dropout.
    assert hf.config == {
        "vocab_size": 64,
        "n_embd": 32,
        "n_layer": 2,
        "resid_pdrop": 0.0,
        "pad_token_id": 0,
    }


def test_a_fifo_config_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "config.json")  # an ordinary open would wait for a writer forever
    with pytest.raises(ArchitectureError) as raised:
        from_hf_config(tmp_path)
    assert str(raised.value) == (
        f"cannot read {tmp_path / 'config.json'}: it is a named pipe (FIFO), not a regular file"
    )
