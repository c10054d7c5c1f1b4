"""walk_paths: one value per path, flags keep correlated branches apart."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from freezegen.check.names import dotted
from freezegen.check.paths import facts_of, walk_paths


def paths(code: str) -> set[tuple[str, ...]]:
    """Every path through ``code`` as the names of the calls it makes."""
    module = cst.parse_module(textwrap.dedent(code))
    return walk_paths(module.body, (), lambda seen, call: (*seen, dotted(call.func) or "?"))


@pytest.mark.parametrize(
    ("test", "outcome", "facts"),
    [
        ("self.scaler", True, [("self.scaler", "", True)]),
        ("not args.amp", True, [("args.amp", "", False)]),
        ("scaler is not None", False, [("scaler", "", False)]),
        ("scaler is None", True, [("scaler", "", False)]),
        ("args.amp and clip", True, [("args.amp", "", True), ("clip", "", True)]),
        ("args.amp and clip", False, []),
        ("a or not b", False, [("a", "", False), ("b", "", True)]),
        ("mode != 'fp16'", True, [("mode", "== 'fp16'", False)]),
        ("step % accum == 0", True, []),
        ("f(x)", True, []),
    ],
)
def test_facts_of_flag_tests(test, outcome, facts):
    assert facts_of(cst.parse_expression(test), outcome) == facts


def test_branches_on_the_same_flag_stay_correlated():
    code = """
        if scaler is not None:
            scale()
        else:
            plain()
        if scaler:
            unscale()
        clip()
    """
    assert paths(code) == {("scale", "unscale", "clip"), ("plain", "clip")}


def test_other_tests_and_reassigned_flags_split_freely():
    code = """
        if amp:
            scale()
        amp = probe()
        if amp:
            unscale()
        if step % accum == 0:
            clip()
    """
    found = paths(code)
    assert ("scale", "probe", "clip") in found and ("probe", "unscale") in found
    assert len(found) == 8


def test_return_break_and_continue_end_or_redirect_a_path():
    code = """
        for batch in loader:
            if bad(batch):
                continue
            if done(batch):
                break
            work()
        if early:
            return finish()
        after()
    """
    found = paths(code)
    assert ("bad", "done", "work", "bad", "done", "finish") in found
    assert ("bad", "done", "after") in found  # broke out at once
    assert ("bad", "bad", "after") in found  # continued, then the loop ended
    assert not [p for p in found if p[-1] == "finish" and "after" in p]


def test_nested_functions_are_not_walked_and_paths_merge_by_value():
    code = "def inner():\n    hidden()\n" + "".join(f"if c{i}:\n    f{i}()\n" for i in range(12))
    found = paths(code)
    assert not any("hidden" in p for p in found)
    assert len(found) == 2**12  # distinct values: every one comes back
    body = cst.parse_module(code).body
    assert walk_paths(body, 0, lambda value, call: value) == {0}


def test_with_try_and_endless_loops():
    code = """
        with ctx(open_it()):
            try:
                risky(inner(x))
            except ValueError:
                handle()
            finally:
                close()
        while True:
            if stop():
                break
            tick()
    """
    found = paths(code)
    # calls outer before inner; the handler may follow the body's work or cut it short
    assert ("ctx", "open_it", "risky", "inner", "close", "stop") in found
    assert ("ctx", "open_it", "handle", "close", "stop") in found
    assert ("ctx", "open_it", "risky", "inner", "handle", "close", "stop", "tick", "stop") in found
    assert all(p[-1] == "stop" for p in found)  # `while True` ends only through its break
