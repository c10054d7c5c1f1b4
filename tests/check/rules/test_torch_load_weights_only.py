"""FG507's safe/unsafe split: --fix writes weights_only=True only where the file shows that the
load reads a state dict; elsewhere the finding stays and --unsafe-fixes applies it."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import pytest

from freezegen.check import check_source
from freezegen.check.engine import FIXABLE, UNSAFE_FIXABLE
from freezegen.rules import RuleOptions

FG507 = RuleOptions(select=("FG507",))
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "check" / "resume_and_export.in.py"

SAFE = {
    "argument of load_state_dict": """\
import torch
model.load_state_dict(torch.load(path, map_location="cpu"))
""",
    "a name fed only to load_state_dict": """\
import torch


def resume(model, path):
    state = torch.load(path, map_location="cpu")
    model.load_state_dict(state_dict=state, strict=False)
""",
    "a literal path this file saves a checkpoint dict to": """\
import torch


def save(model, optimizer):
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, "last.pt")


def resume(model, optimizer):
    checkpoint = torch.load("last.pt")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
""",
    "a literal path this file saves a state dict to": """\
import torch


def save(model, optimizer):
    torch.save({"model": model.state_dict(), "opt": optimizer.state_dict(), "v": 2}, "best.pt")


def load():
    return torch.load("best.pt")
""",
    "a path expression saved to in the same function": """\
import torch


def roundtrip(model, args):
    torch.save(model.state_dict(), args.out)
    return torch.load(args.out)
""",
}

UNSAFE = {
    "string keys into load_state_dict": """\
import torch


def resume(model, optimizer, path):
    # the checkpoint's other entries (an argparse.Namespace, say) are unpickled too
    checkpoint = torch.load(path, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
""",
    "a string key of the load itself": """\
import torch
model.load_state_dict(torch.load(path)["model"])
""",
    "a checkpoint dict saved with a value of unknown type": """\
import torch


def save(model, args):
    torch.save({"model": model.state_dict(), "args": args}, "last.pt")


def resume(model):
    model.load_state_dict(torch.load("last.pt")["model"])
""",
    "a whole model": """\
import torch
model = torch.load("model.pt")
model.eval()
""",
    "returned to the caller": """\
import torch


def load_features(path):
    return torch.load(path)
""",
    "a key read for something else": """\
import torch


def resume(model, path):
    checkpoint = torch.load(path)
    model.load_state_dict(checkpoint["model"])
    return checkpoint["args"]  # an argparse.Namespace in many scripts
""",
    "a name fed to load_state_dict in another function": """\
import torch


def load(path):
    state = torch.load(path)
    return state


def apply(model, state):
    model.load_state_dict(state)
""",
    "the name rebound after the load": """\
import torch
state = torch.load(path)
state = {k.removeprefix("module."): v for k, v in state.items()}
model.load_state_dict(state)
""",
    "a path also saved a whole model to": """\
import torch
torch.save(model.state_dict(), "model.pt")
torch.save(model, "model.pt")
restored = torch.load("model.pt")
""",
    "a bare path name saved to in another function": """\
import torch


def save(model, path):
    torch.save(model.state_dict(), path)


def load(path):
    return torch.load(path)
""",
}


@pytest.mark.parametrize("source", SAFE.values(), ids=SAFE.keys())
def test_fix_applies_where_the_file_shows_a_state_dict(source):
    (found,) = check_source(source, "train.py", FG507).diagnostics
    assert found.fix == f"pass weights_only=True {FIXABLE}"
    fixed = check_source(source, "train.py", FG507, fix=True)
    assert fixed.fixes == 1 and fixed.diagnostics == []
    assert "weights_only=True" in fixed.fixed_source


@pytest.mark.parametrize("source", UNSAFE.values(), ids=UNSAFE.keys())
def test_fix_is_unsafe_elsewhere_and_unsafe_fixes_applies_it(source):
    (found,) = check_source(source, "train.py", FG507).diagnostics
    assert found.fix.endswith(UNSAFE_FIXABLE) and "UnpicklingError" in found.fix
    assert FIXABLE not in found.fix
    kept = check_source(source, "train.py", FG507, fix=True)
    assert (kept.fixed_source, kept.fixes, kept.diagnostics) == (None, 0, [found])
    fixed = check_source(source, "train.py", FG507, fix=True, unsafe_fixes=True)
    assert fixed.fixes == 1 and fixed.diagnostics == []
    assert "weights_only=True" in fixed.fixed_source


def _run(source: str, name: str, out_dir: Path) -> dict:
    """Import ``source`` as module ``name`` (pickle finds its classes there) and run main."""
    path = out_dir / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return module.main(str(out_dir))
    finally:
        del sys.modules[name]


@pytest.mark.filterwarnings("ignore:Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
def test_fixed_script_still_loads_its_pickled_model(tmp_path, monkeypatch):
    # torch before 2.6 loads without weights_only as weights_only=False; this torch does so
    # with the variable set, as the scripts this fix is for ran
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    source = FIXTURE.read_text(encoding="utf-8")
    fixed = check_source(source, FIXTURE.name, fix=True)
    assert fixed.fixes == 2
    assert [d.line for d in fixed.diagnostics if d.code == "FG507"] == [28, 48, 54]
    (tmp_path / "safe").mkdir()
    result = _run(fixed.fixed_source, "fg507_safe_fixed", tmp_path / "safe")
    expected = result["model"](result["x"])
    for loaded in result["loaded"]:
        assert (loaded(result["x"]) == expected).all()
    assert result["step"] == 29 and result["features"].tolist() == [0, 1, 2, 3, 4, 5]

    # what --unsafe-fixes writes breaks this script, which is why --fix does not
    unsafe = check_source(source, FIXTURE.name, fix=True, unsafe_fixes=True)
    assert unsafe.fixes == 5
    (tmp_path / "unsafe").mkdir()
    with pytest.raises(pickle.UnpicklingError):
        _run(unsafe.fixed_source, "fg507_unsafe_fixed", tmp_path / "unsafe")
