"""The runtime source a generated script carries is the module's own text, and the script's
imports provide what it imports."""

from __future__ import annotations

import inspect

from freezegen.generate.recipe import COMMON_IMPORTS
from freezegen.generate.runtime import runtime_imports, runtime_source
from freezegen.runtime import freezing


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
