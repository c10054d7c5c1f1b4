"""The templates themselves: no conditional nested deeper than one level (inherited blocks
included), and a user's FREEZEGEN_TEMPLATES folder overrides a single part."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

from freezegen.generate import render_script
from freezegen.spec import load_spec
from tests.generate.conftest import REPO, tiny_spec

TEMPLATES = REPO / "templates"
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)))
ALL_TEMPLATES = sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2"))


def conditional_levels(
    name: str, env: jinja2.Environment = ENV
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Return (line, level) of every conditional in template ``name`` and the level each of its
    blocks' bodies starts at. Level 1 is a conditional at the top; each enclosing ``if`` or
    ``for`` body adds one. A block overriding a parent's block starts at the level the parent
    places it at, so nesting cannot hide behind ``{% extends %}``. An ``{% include %}`` starts a
    file of its own: the skeleton's loops only place parts."""
    tree = env.parse(env.loader.get_source(env, name)[0])
    inherited: dict[str, int] = {}
    for extends in tree.find_all(nodes.Extends):
        inherited.update(conditional_levels(extends.template.value, env)[1])
    found: list[tuple[int, int]] = []
    blocks: dict[str, int] = {}

    def walk(node: nodes.Node, depth: int) -> None:
        if isinstance(node, nodes.Block):
            depth = inherited.get(node.name, depth)
            blocks[node.name] = depth
        if isinstance(node, (nodes.If, nodes.CondExpr)):
            found.append((node.lineno, depth + 1))
        if isinstance(node, nodes.If):
            walk(node.test, depth)
            for branch in node.elif_:
                walk(branch.test, depth)
                for child in branch.body:
                    walk(child, depth + 1)
            for child in [*node.body, *node.else_]:
                walk(child, depth + 1)
        elif isinstance(node, nodes.For):
            walk(node.iter, depth)
            for child in [*node.body, *node.else_]:
                walk(child, depth + 1)
        else:
            for child in node.iter_child_nodes():
                walk(child, depth)

    walk(tree, 0)
    return found, blocks


@pytest.mark.parametrize("name", ALL_TEMPLATES)
def test_no_conditional_nested_deeper_than_one_level(name: str) -> None:
    found, _ = conditional_levels(name)
    nested = [line for line, level in found if level > 1]
    assert not nested, f"{name}: conditionals nested inside another if/for at lines {nested}"


def test_the_nesting_check_sees_nesting_through_blocks() -> None:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(
            {
                "base": "{% if a %}{% block b %}{% endblock %}{% endif %}",
                "child": '{% extends "base" %}{% block b %}{% if c %}x{% endif %}{% endblock %}',
            }
        )
    )
    assert conditional_levels("child", env)[0] == [(1, 2)]
    assert conditional_levels("base", env)[0] == [(1, 1)]


def test_a_user_overrides_one_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_path = tiny_spec(tmp_path / "spec", scheduler={"name": "linear"})
    spec = load_spec(spec_path)
    before = render_script(spec, spec_path, spec_path.parent)
    part = "parts/step/lr-linear.py.j2"
    override = tmp_path / "mine" / part
    override.parent.mkdir(parents=True)
    original = (TEMPLATES / part).read_text(encoding="utf-8")
    override.write_text(original.replace("return max(", "return 0.5 * max("), encoding="utf-8")
    monkeypatch.setenv("FREEZEGEN_TEMPLATES", str(tmp_path / "mine"))
    after = render_script(spec, spec_path, spec_path.parent)
    assert after != before
    assert after == before.replace("    return max(0.0,", "    return 0.5 * max(0.0,")
