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


def test_readme_adapter_table_is_what_the_estimator_says(repo):
    """Each row of the adapters table is the analytic estimate of the spec shown above it,
    with that row's model, base, checkpointing and batch."""
    from freezegen.memory.analytic import estimate_analytic
    from freezegen.spec import load_text

    readme = (repo / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Adapters: LoRA and QLoRA") :]
    base = re.search(r"```yaml\n# qlora.freezegen.yaml\n(.+?)```", section, flags=re.S).group(1)
    rows = re.findall(
        r"^\| ([a-z0-9.-]+) \| (nf4|int8|int8 \(torchao\)|none \(LoRA\)) \| (yes|no) \| (\d+) "
        r"\| ([\d.]+) "
        r"\| ([\d.]+) \| (yes|no) \|$",
        section,
        flags=re.M,
    )
    assert len(rows) >= 8 and any("torchao" in row[1] for row in rows)
    for model, weights, ckpt, batch, peak, required, fits in rows:
        # "int8 (torchao)": the int8 weights of quantization.library torchao
        quantization = weights.split()[0] + (", library: torchao" if "torchao" in weights else "")
        text = (
            base.replace("preset: llama-3-8b", f"preset: {model}")
            .replace("micro_batch_size: 1", f"micro_batch_size: {batch}")
            .replace("activation_checkpointing: true", f"activation_checkpointing: {ckpt == 'yes'}")
            .replace("weights: nf4", f"weights: {quantization}")
        )
        result = load_text(text, "qlora.freezegen.yaml")
        assert result.ok, result.diagnostics
        est = estimate_analytic(result.spec)
        gib = 2**30
        assert (f"{est.peak_bytes / gib:.1f}", f"{est.required_bytes / gib:.1f}") == (
            peak,
            required,
        ), (model, weights, ckpt, batch)
        assert est.fits == (fits == "yes")
