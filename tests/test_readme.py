"""The README is a contract: its commands are what CI runs, its rule table is the registry."""

from __future__ import annotations

import re

from freezegen.lint.registry import all_rules


def _commands(readme: str) -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", readme)


def test_readme_opens_with_setup_and_test_commands_that_ci_runs(repo):
    readme = (repo / "README.md").read_text(encoding="utf-8")
    main_job, tests = _commands(readme)[:2]
    assert "pip install -c constraints.txt" in main_job and "freezegen lint" in main_job
    assert "python -m pytest" in tests
    ci = (repo / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_readme_rule_tables_match_the_registries(repo):
    from freezegen.check.registry import all_rules as check_rules

    readme = (repo / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (FG\d{3}) \| ([a-z0-9-]+) \|", readme, flags=re.M))
    registered = [*all_rules(), *check_rules()]
    assert rows == {r.code: r.name for r in registered}
