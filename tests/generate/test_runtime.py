"""The runtime source a generated script carries is the module's own text, and the script's
imports provide what it imports."""

from __future__ import annotations

import ast
import inspect

from freezegen.generate.recipe import COMMON_IMPORTS
from freezegen.generate.runtime import runtime_imports, runtime_requires, runtime_source
from freezegen.runtime import adapters, freezing


def test_inlined_source_is_the_module_from_its_first_definition() -> None:
    source = runtime_source("freezing")
    assert source.startswith("def transformer_blocks(")
    assert inspect.getsource(freezing).endswith(source)


def test_script_imports_cover_the_runtime_module() -> None:
    imports = [i for i in runtime_imports("freezing") if not i.startswith("from __future__")]
    assert imports
    assert set(imports) <= set(COMMON_IMPORTS)


def test_golden_scripts_hold_the_runtime_source_verbatim() -> None:
    from tests.generate.test_golden import GOLDEN

    scripts = sorted(GOLDEN.glob("*.py"))
    assert scripts
    for script in scripts:
        assert runtime_source("freezing") in script.read_text(), script.name


def test_a_runtime_module_importing_another_requires_its_source() -> None:
    assert runtime_requires("freezing") == []
    assert runtime_requires("names") == []
    assert runtime_requires("adapters") == ["freezing", "names"]
    imports = [i for i in runtime_imports("adapters") if not i.startswith("from __future__")]
    assert imports
    assert set(imports) <= set(COMMON_IMPORTS)
    # Every name adapters takes from another runtime module is defined in the source a script
    # carries of that module.
    for required in runtime_requires("adapters"):
        taken = {
            alias.name
            for node in ast.parse(inspect.getsource(adapters)).body
            if isinstance(node, ast.ImportFrom) and node.module == f"freezegen.runtime.{required}"
            for alias in node.names
        }
        defined = set()
        for node in ast.parse(runtime_source(required)).body:
            defined |= {getattr(node, "name", None)}
            defined |= {t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)}
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
        assert taken and taken <= defined, required
