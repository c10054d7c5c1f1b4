"""`freezegen estimate` as users call it: the JSON contract, the table, and clean errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from freezegen.cli import app

runner = CliRunner()
CONTRACT = [
    "method",
    "peak_bytes",
    "budget_bytes",
    "overhead_bytes",
    "breakdown",
    "trainable_parameters",
    "total_parameters",
    "per_device",
]
REPO = Path(__file__).resolve().parent.parent
TERMS = ["parameters", "gradients", "optimizer_states", "activations", "temporaries"]


def test_json_follows_the_design_contract(repo):
    spec = repo / "examples" / "gpt2-medium-freezing" / "freeze-6.freezegen.yaml"
    result = runner.invoke(app, ["estimate", str(spec), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data) == CONTRACT
    assert list(data["breakdown"]) == TERMS
    assert data["method"] == "analytic" and data["per_device"] is True
    assert data["peak_bytes"] == sum(data["breakdown"].values())
    assert data["total_parameters"] == 354_823_168
    assert 0 < data["trainable_parameters"] < data["total_parameters"]
    assert data["budget_bytes"] == 81559 * 1024 * 1024


def test_freezing_lowers_the_estimate(repo):
    peaks = []
    for n in (0, 6, 12):
        spec = repo / "examples" / "gpt2-medium-freezing" / f"freeze-{n}.freezegen.yaml"
        out = runner.invoke(app, ["estimate", str(spec), "--format", "json"]).output
        peaks.append(json.loads(out)["peak_bytes"])
    assert peaks[0] > peaks[1] > peaks[2]


def test_table_shows_terms_budget_and_verdict(repo):
    spec = repo / "examples" / "tiny" / "freezegen.yaml"
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 0, result.output
    for word in ("activations", "optimizer states", "overhead", "budget", "headroom", "fits"):
        assert word in result.output


def test_factory_model_points_to_trace(tmp_path):
    spec = tmp_path / "f.freezegen.yaml"
    spec.write_text(
        "version: 1\nmodel: {factory: 'pkg.mod:build'}\nbatch: {micro_batch_size: 2, seq_len: 8}\n"
    )
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 2
    assert "--trace" in result.output


def test_invalid_spec_prints_located_diagnostics_and_exits_2(tmp_path):
    spec = tmp_path / "f.freezegen.yaml"
    spec.write_text("version: 1\nmodel: {preset: gpt3}\nbatch: {micro_batch_size: 2, seq_len: 8}\n")
    result = runner.invoke(app, ["estimate", str(spec)])
    assert result.exit_code == 2
    assert ":2:17: FG004" in result.output


# --- --explain -------------------------------------------------------------------------------

GPT2_6 = ("examples", "gpt2-medium-freezing", "freeze-6.freezegen.yaml")
EXAMPLES = [
    ("examples", "gpt2-medium-freezing", "freeze-0.freezegen.yaml"),
    GPT2_6,
    ("examples", "gpt2-medium-freezing", "freeze-12.freezegen.yaml"),
    ("examples", "bert-base-freeze-6", "freezegen.yaml"),
    ("examples", "llama-3-8b-bf16-checkpointing", "freezegen.yaml"),
    ("examples", "tiny", "freezegen.yaml"),
]


def _spec(repo, parts):
    return repo.joinpath(*parts)


def test_explain_puts_the_numbers_into_each_formula(repo):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--explain"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        "optimizer_states = 2 states (exp_avg, exp_avg_sq) x 4 B x 226,734,080 trainable "
        "= 1.69 GiB" in out
    )
    assert "parameters       = 354,823,168 params x 4 B (fp32) = 1.32 GiB" in out
    assert "8,192 tokens x 50,257 vocab" in out  # the loss path, b*s*vocab
    assert "the peak is reached during" in out
    assert "not itemised" not in out


def _explain_cases():
    """The examples plus knobs that move the peak to other moments of the step."""
    from freezegen.spec import load, load_spec

    def raw(parts):
        result = load(_spec(REPO, parts))
        return result.document.data, result.spec

    cases = [load_spec(_spec(REPO, parts)) for parts in EXAMPLES]
    data, base = raw(GPT2_6)
    tdata, tiny = raw(("examples", "tiny", "freezegen.yaml"))
    variants = [
        {"optimizer": {**data["optimizer"], "name": "sgd", "momentum": 0.9}},
        {"optimizer": {**data["optimizer"], "implementation": "loop"}},
        {"optimizer": {**data["optimizer"], "implementation": "fused"}},
        {"model": {**data["model"], "attention": "eager"}},
        {"precision": "bf16", "activation_checkpointing": True},
        {"distributed": {"strategy": "ddp"}, "hardware": {"gpu": "A100-80GB", "gpus_per_node": 2}},
        {"distributed": {"strategy": "fsdp"}, "hardware": {"gpu": "A100-80GB", "gpus_per_node": 4}},
        {"batch": {**data["batch"], "micro_batch_size": 1, "seq_len": 8}},
        {"model": {**data["model"], "head": "sequence-classification"}},
    ]
    for update in variants:
        cases.append(type(base).model_validate({**data, **update}))
    base_dir = {"base_dir": REPO / "examples" / "tiny"}
    cases.append(
        type(tiny).model_validate({**tdata, "freeze": {"embeddings": False}}, context=base_dir)
    )
    return cases


@pytest.mark.parametrize("index", range(16))
def test_explain_follows_the_analytic_model(index):
    """Every term is itemised, equals the analytic estimate's, and they add up to the peak."""
    from freezegen.memory import estimate
    from freezegen.memory.explain import explain

    spec = _explain_cases()[index]
    explanation = explain(spec)
    reference = estimate(spec, "analytic")
    assert explanation.estimate == reference
    assert explanation.itemised, "explain.py no longer follows analytic._model"
    by_name = {t.name: t for t in explanation.terms}
    assert sum(by_name[n].value for n in TERMS) == reference.peak_bytes
    assert by_name["overhead"].value == reference.overhead_bytes
    assert all(t.formula and "not itemised" not in t.formula for t in explanation.terms)


def _accuracy_matrix():
    """tests/memory/test_accuracy.py's cases, without their traced-vs-analytic xfail marks.
    (pytest imports tests/memory as the package ``memory``: the same module it collects.)"""
    from memory.test_accuracy import CASES

    return [pytest.param(*case.values, id=case.id) for case in CASES]


@pytest.fixture(scope="module")
def reduced_spec(tmp_path_factory):
    """``make(family, body, model_extra)``: a spec at tests/memory's reduced dimensions."""
    from memory.conftest import CONFIGS

    from freezegen.spec import load_text

    root = tmp_path_factory.mktemp("configs")
    for name, cfg in CONFIGS.items():
        (root / f"{name}.json").write_text(json.dumps(cfg))

    def make(family, body, model_extra):
        extra = f", {model_extra}" if model_extra else ""
        text = f"version: 1\nmodel: {{hf_config: {root / (family + '.json')}{extra}}}\n{body}\n"
        result = load_text(text)
        assert result.spec is not None, result.diagnostics
        return result.spec

    return make


@pytest.mark.parametrize(("family", "body", "model_extra"), _accuracy_matrix())
def test_explain_adds_up_to_the_estimate_across_the_accuracy_matrix(
    reduced_spec, family, body, model_extra
):
    """explain writes out the analytic model's own parts: its terms are the estimate's breakdown
    (FSDP, DDP, checkpointing, every moment that can set the peak), and each part's factors
    multiply to its bytes up to the allocator's 512-byte rounding of each tensor."""
    import math

    from freezegen.memory import estimate
    from freezegen.memory.analytic import TERMS as MOMENT_TERMS
    from freezegen.memory.analytic import analyse
    from freezegen.memory.estimate import Breakdown
    from freezegen.memory.explain import explain

    spec = reduced_spec(family, body, model_extra)
    reference = estimate(spec, "analytic")
    explanation = explain(spec)
    assert explanation.estimate == reference and explanation.itemised
    by_name = {t.name: t for t in explanation.terms}
    assert Breakdown(*(by_name[n].value for n in TERMS)) == reference.breakdown
    for name in TERMS:
        term = by_name[name]
        assert term.formula and "not itemised" not in term.formula
        if term.parts:
            assert sum(value for _, value in term.parts) == term.value
    step = analyse(spec)
    assert step.peak.breakdown == reference.breakdown
    assert len({m.name for m in step.moments}) == len(step.moments)
    for moment in step.moments:
        for name in MOMENT_TERMS:
            for part in moment.parts(name):
                if part.factors:
                    product = math.prod(n for n, _ in part.factors)
                    assert product <= abs(part.value) < product + 512 * 1000, (moment.name, part)
                else:
                    assert part.value == 0 and part.note, (moment.name, part)


def test_explain_names_fsdp_forward_all_gather_when_little_trains(reduced_spec):
    """Frozen blocks and few tokens under FSDP2: the peak is a block's forward all-gather, and
    explain lists the three buffers alive together (the previous unit's all-gather output, the
    block's own and its unsharded parameters) beside the shards and the root."""
    from freezegen.memory.explain import explain

    spec = reduced_spec(
        "llama-wide",
        "distributed: {strategy: fsdp}\nhardware: {gpus_per_node: 2, memory_gib: 80}\n"
        "freeze: {embeddings: true, layers: '0-3'}\nbatch: {micro_batch_size: 1, seq_len: 16}",
        "",
    )
    explanation = explain(spec)
    assert explanation.phase is not None and "block 1's forward all-gather" in explanation.phase
    parameters = next(t for t in explanation.terms if t.name == "parameters")
    texts = [text for text, _ in parameters.parts]
    for label in (
        "block 0's all-gather output, still referenced",
        "block 1's all-gather output",
        "block 1's unsharded parameters, copied out",
    ):
        assert any(label in text for text in texts), (label, texts)


def test_explain_writes_a_term_of_several_parts_one_part_a_line(repo):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--explain"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  activations "))
    assert lines[start].endswith("= 17.61 GiB, the sum of")
    assert "blocks 6-23 saved: 18 blocks x 8,192 tokens x" in lines[start + 1]
    assert lines[start + 2].lstrip().startswith("+ final norm / head saved: 8,192 tokens x")
    assert lines[start + 3].lstrip().startswith("+ saved log-softmax: 8,192 tokens x 50,257 vocab")


def test_explain_json_adds_the_formulas_to_the_contract(repo):
    spec = _spec(repo, GPT2_6)
    result = runner.invoke(app, ["estimate", str(spec), "--explain", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data)[: len(CONTRACT)] == CONTRACT and list(data)[-1] == "explain"
    terms = {item["term"]: item for item in data["explain"]}
    assert terms["optimizer_states"]["bytes"] == data["breakdown"]["optimizer_states"]
    assert "226,734,080 trainable" in terms["optimizer_states"]["formula"]


def test_explain_says_what_it_assumes_about_routing(tmp_path, repo):
    spec = tmp_path / "mixtral.freezegen.yaml"
    spec.write_text(
        "version: 1\nmodel: {preset: mixtral-8x7b}\nprecision: bf16-pure\n"
        "freeze: {embeddings: true, layers: {first: 24}}\n"
        "batch: {micro_batch_size: 1, seq_len: 2048}\n"
    )
    result = runner.invoke(app, ["estimate", str(spec), "--explain"])
    assert result.exit_code == 0, result.output
    assert "it assumes: each token is routed to its top 2 of 8 experts" in result.output
    assert "tokens x 2 / 8 rows per expert" in result.output
    assert "no router auxiliary loss" in result.output
    dense = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--explain"])
    assert "it assumes" not in dense.output


def test_explain_with_trace_is_refused(repo):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--explain", "--trace"])
    assert result.exit_code == 2
    assert "--explain" in result.output and "--trace" in result.output


# --- --sweep ---------------------------------------------------------------------------------


def test_sweep_prints_one_row_per_value(repo):
    args = ["estimate", str(_spec(repo, GPT2_6)), "--sweep", "freeze.layers.first=0,6,12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["0", "6", "12"]
    for word in ("peak", "required", "budget", "fits"):
        assert word in result.output


def test_sweep_json_is_a_list_of_contract_objects_with_the_value(repo):
    spec = _spec(repo, GPT2_6)
    result = runner.invoke(
        app,
        ["estimate", str(spec), "--sweep", "freeze.layers.first=0,6,12", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [item["sweep"] for item in data] == [{"freeze.layers.first": n} for n in (0, 6, 12)]
    for item in data:
        assert list(item)[: len(CONTRACT)] == CONTRACT
        assert item["peak_bytes"] == sum(item["breakdown"].values())
    peaks = [item["peak_bytes"] for item in data]
    assert peaks[0] > peaks[1] > peaks[2]
    # The middle point is the file itself: the same numbers as without --sweep.
    alone = json.loads(runner.invoke(app, ["estimate", str(spec), "--format", "json"]).output)
    assert {k: v for k, v in data[1].items() if k != "sweep"} == alone


@pytest.mark.parametrize(
    ("sweep", "values"),
    [
        ("batch.micro_batch_size=4,8,16", [4, 8, 16]),
        ("activation_checkpointing=false,true", [False, True]),
        ("precision=fp32,bf16", ["fp32", "bf16"]),
        ("freeze.layers='0-3,8',{first: 2},null", ["0-3,8", {"first": 2}, None]),
        ("optimizer.lr=2.0e-5,1e-4", [2e-5, 1e-4]),
        ("model.attention=sdpa,eager", ["sdpa", "eager"]),
        ("freeze.except=[],['*.bias']", [[], ["*.bias"]]),
    ],
)
def test_sweep_values_are_yaml_1_2_scalars(repo, sweep, values):
    args = ["estimate", str(_spec(repo, GPT2_6)), "--sweep", sweep, "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    key = sweep.partition("=")[0]
    assert [item["sweep"][key] for item in json.loads(result.output)] == values


def test_sweep_changes_what_the_key_says(repo):
    spec = _spec(repo, GPT2_6)
    args = ["estimate", str(spec), "--format", "json", "--sweep"]
    out = runner.invoke(app, [*args, "batch.micro_batch_size=4,16"]).output
    small, large = (item["breakdown"]["activations"] for item in json.loads(out))
    assert 3.5 < large / small < 4.5
    out = runner.invoke(app, [*args, "activation_checkpointing=false,true"]).output
    off, on = (item["peak_bytes"] for item in json.loads(out))
    assert on < off


def test_sweep_over_an_adapter_rank_and_a_quantized_base(tmp_path):
    spec = tmp_path / "freezegen.yaml"
    spec.write_text(
        "version: 1\nmodel: {preset: llama-3-8b}\nprecision: bf16\n"
        "batch: {micro_batch_size: 1, seq_len: 2048}\nactivation_checkpointing: true\n"
        "adapter: {r: 16, targets: all-linear}\nhardware: {gpu: RTX-4090}\n"
    )
    args = ["estimate", str(spec), "--format", "json", "--sweep"]
    out = runner.invoke(app, [*args, "adapter.r=8,16,64"])
    assert out.exit_code == 0, out.output
    ranks = json.loads(out.output)
    trainable = [item["trainable_parameters"] for item in ranks]
    assert trainable[1] == 2 * trainable[0] and trainable[2] == 8 * trainable[0]
    assert [item["peak_bytes"] for item in ranks] == sorted(item["peak_bytes"] for item in ranks)
    out = runner.invoke(app, [*args, "quantization.weights=none,nf4"])
    full, nf4 = json.loads(out.output)
    # The 4-bit base holds the ~7B frozen block weights in about half a byte each, not four.
    assert full["breakdown"]["parameters"] - nf4["breakdown"]["parameters"] > 20 * 2**30
    assert nf4["trainable_parameters"] == full["trainable_parameters"]


def test_two_sweeps_make_a_grid(repo):
    args = ["estimate", str(_spec(repo, GPT2_6)), "--format", "json"]
    args += ["--sweep", "precision=fp32,bf16", "--sweep", "freeze.layers.first=0,12"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    points = [item["sweep"] for item in json.loads(result.output)]
    assert points == [
        {"precision": p, "freeze.layers.first": n} for p in ("fp32", "bf16") for n in (0, 12)
    ]


@pytest.mark.parametrize(
    ("sweep", "message", "caret"),
    [
        ("freeze.layrs.first=0,6", "did you mean 'layers'?", "       ^^^^^"),
        (
            "batch.micro_batch_size=4,x,16",
            "must be a valid integer, got 'x'",
            "                         ^",
        ),
        ("precision=fp32,fp8", "precision:", "               ^^^"),
        ("batch.micro_batch_size", "expected key=value1,value2", None),
        ("=1,2", "missing key", None),
        ("batch..seq_len=8", "empty key part", None),
        ("precision.x=1", "'precision' takes a value, not keys", None),
        ("batch.micro_batch_size=4,,16", "empty value", None),
        ("batch.micro_batch_size=yes", "must be a valid integer, got 'yes'", None),
        ("freeze.layers=[0, 1", "cannot read", None),
        ("bogus=1", "expected one of:", None),
    ],
)
def test_bad_sweeps_are_located_and_exit_2(repo, sweep, message, caret):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--sweep", sweep])
    assert result.exit_code == 2, result.output
    assert "freezegen: error: --sweep" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if caret is not None:
        lines = result.output.splitlines()
        assert lines[-2] == f"  {sweep}"
        assert lines[-1] == f"  {caret}"


def test_sweep_point_lint_refuses_names_the_value(repo):
    # Freezing every block and the embeddings leaves nothing to train at first=24: lint's
    # FG104, which every sweep point goes through as the spec itself does.
    args = ["estimate", str(_spec(repo, GPT2_6)), "--sweep", "freeze.layers.first=6,24"]
    args += ["--sweep", "freeze.patterns=['*ln_f*']"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "at freeze.layers.first=24" in result.output and "FG104" in result.output
    assert "first=6," not in result.output  # the point that lints clean is not blamed


def test_the_same_key_twice_and_too_many_points_are_refused(repo):
    spec = str(_spec(repo, GPT2_6))
    twice = ["--sweep", "precision=fp32", "--sweep", "precision=bf16"]
    result = runner.invoke(app, ["estimate", spec, *twice])
    assert result.exit_code == 2 and "swept twice" in result.output
    many = ["--sweep", "batch.seq_len=" + ",".join(str(8 * i) for i in range(1, 66))]
    result = runner.invoke(app, ["estimate", spec, *many])
    assert result.exit_code == 2 and "at most" in result.output


# --- --plot ----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_plot_writes_stacked_bars_with_the_budget_line(repo, tmp_path, suffix):
    pytest.importorskip("matplotlib")
    out = tmp_path / f"sweep.{suffix}"
    args = ["estimate", str(_spec(repo, GPT2_6)), "--sweep", "freeze.layers.first=0,6,12"]
    result = runner.invoke(app, [*args, "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    data = out.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG")
    else:
        text = data.decode()
        assert "<svg" in text and "budget 79.6 GiB" in text
        assert "activations" in text and "freeze.layers.first" in text
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_plot_without_sweep_is_one_bar(repo, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "one.svg"
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", str(out)])
    assert result.exit_code == 0, result.output
    assert "freeze-6" in out.read_text()


def test_plot_refuses_other_file_types(repo, tmp_path):
    result = runner.invoke(
        app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", str(tmp_path / "x.jpg")]
    )
    assert result.exit_code == 2
    assert ".svg or .png" in result.output


def test_plot_without_matplotlib_says_how_to_install_it(repo, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    out = tmp_path / "x.png"
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", str(out)])
    assert result.exit_code == 2
    assert "pip install 'freezegen[plot]'" in result.output
    assert not out.exists()


def test_plot_into_an_unwritable_place_is_a_clean_error(repo, tmp_path):
    pytest.importorskip("matplotlib")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(
        app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", str(blocker / "x.png")]
    )
    assert result.exit_code == 2
    assert "cannot write" in result.output and "Traceback" not in result.output


def test_plot_to_stdout_is_refused(repo):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", "-"])
    assert result.exit_code == 2
    assert result.output == (
        "freezegen: error: --plot writes a file (FILE.svg or FILE.png), not standard output\n"
    )


def test_plot_never_overwrites_the_spec_or_a_fifo_and_says_so_before_estimating(repo, tmp_path):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "spec.svg"  # a spec may have any name
    spec.write_text("version: 1\nmodel: {preset: gpt2}\nbatch: {seq_lne: 8}\n")
    before = spec.read_bytes()
    result = runner.invoke(app, ["estimate", str(spec), "--plot", str(spec)])
    assert result.exit_code == 2  # refused before the spec (which does not load) is read
    assert result.output == (
        f"freezegen: error: cannot write {spec}: that is {spec}, which this command reads; "
        "write the output elsewhere\n"
    )
    fifo = tmp_path / "plot.svg"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--plot", str(fifo)])
    assert result.exit_code == 2
    assert result.output == (
        f"freezegen: error: cannot write {fifo}: it is a named pipe (FIFO), not a regular file\n"
    )
    assert spec.read_bytes() == before and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_fifo_spec_is_a_located_error_not_a_hang(tmp_path):
    fifo = tmp_path / "x.freezegen.yaml"
    os.mkfifo(fifo)  # an ordinary open would wait for a writer forever
    result = runner.invoke(app, ["estimate", str(fifo)])
    assert result.exit_code == 2
    assert result.output.startswith(
        f"{fifo}:1:1: FG006 cannot read file: it is a named pipe (FIFO), not a regular file"
    )


def test_unknown_format_and_missing_file_exit_2(repo, tmp_path):
    result = runner.invoke(app, ["estimate", str(_spec(repo, GPT2_6)), "--format", "xml"])
    assert result.exit_code == 2 and "table or json" in result.output
    result = runner.invoke(app, ["estimate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "no such file" in result.output


# --- benchmarks (CPU-side smoke tests; the real runs are not CI) ------------------------------


def _benchmark(name):
    import importlib.util
    import sys

    path = REPO / "benchmarks" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    try:
        module_spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look their module up there
        module_spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_accuracy_benchmark_builds_its_matrix_and_peer_figures(capsys):
    bench = _benchmark("estimate_accuracy")
    names = [c.name for c in bench.cases()]
    assert len(names) == len(set(names)) >= 12
    assert any("llama-2-7b" in n for n in names) and any("bert-base" in n for n in names)
    spec = bench.cases()[0].spec  # GPT-2 Medium fp32, full fine-tuning
    total = 354_823_168
    acc, _ = bench.accelerate_training_bytes(spec, total)
    assert acc == 16 * total  # fp32: 4 x the fp32 model size
    assert bench.deepspeed_model_states_bytes(total) == 16 * total
    assert bench.deepspeed_zero2_gpu_bytes(total) == 20 * total
    assert bench.main(["--no-trace", "--only", "bert-base cls fp16"]) == 0
    out = capsys.readouterr().out
    assert "bert-base cls fp16 32x128 freeze 6" in out and "accelerate" in out
    # LoRA and QLoRA rows: the analytic figures of adapter runs beside the same peers.
    assert bench.main(["--no-trace", "--only", "qlora"]) == 0
    out = capsys.readouterr().out
    assert "llama-3-8b qlora nf4 bf16 1x2048 ckpt r16 all-linear" in out


def test_gpu_truth_dry_run_and_no_cuda_message(capsys):
    bench = _benchmark("gpu_truth")
    assert bench.main(["--dry-run", "--only", "gpt2-medium fp32 16x512 sdpa"]) == 0
    out = capsys.readouterr().out
    assert "freeze 12" in out and "analytic required" in out
    import torch

    if not torch.cuda.is_available():
        assert bench.main(["--only", "bert-base cls fp16"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_gpu_list_answers_which_card_the_run_needs(repo):
    # the example budgets a memory size of its own: each row replaces it with the card
    spec = repo / "examples/llama-3-8b-bf16-checkpointing/freezegen.yaml"
    result = runner.invoke(
        app, ["estimate", str(spec), "--gpu", "A10G,H100-80GB", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["budget_bytes"] for r in rows] == sorted(r["budget_bytes"] for r in rows)
    assert rows[0]["peak_bytes"] == rows[1]["peak_bytes"]
    fits = [r["peak_bytes"] + r["overhead_bytes"] <= r["budget_bytes"] for r in rows]
    assert fits == [False, True]
    table = runner.invoke(
        app, ["estimate", str(repo / "examples/tiny/freezegen.yaml"), "--gpu", "T4,L4"]
    )
    assert table.exit_code == 0 and "hardware.gpu" in table.stdout and "L4" in table.stdout


def test_an_unknown_gpu_in_the_list_is_located_in_the_option(repo):
    result = runner.invoke(
        app, ["estimate", str(repo / "examples/tiny/freezegen.yaml"), "--gpu", "T4,A10X"]
    )
    assert result.exit_code == 2
    assert "--gpu T4,A10X: hardware.gpu: unknown GPU 'A10X'" in result.output
    assert "\n     ^^^^" in result.output
