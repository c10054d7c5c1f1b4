"""The ``freezegen`` command: parses options, runs a command, prints its result, exits.

Each command lives in :mod:`freezegen.commands` as ``run(Options) -> CommandResult``; this
module only turns arguments into those options and the result into output and an exit status.
Exit codes follow ruff: 0 clean, 1 findings (errors, or warnings with --strict), 2 a usage
error or an internal one. Nothing here decides what a finding is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from freezegen._version import __version__

if TYPE_CHECKING:
    from freezegen.commands.result import CommandResult

app = typer.Typer(
    name="freezegen",
    help="Lint, estimate and generate PyTorch fine-tuning runs from a YAML spec.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"freezegen {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    """freezegen: will this fine-tuning run fit, and is it set up right?"""


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return tuple(v.strip().upper() for raw in values for v in raw.split(",") if v.strip())


def _terminal_colors() -> bool:
    """True when stdout is a terminal and NO_COLOR is not set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _finish(result: CommandResult) -> NoReturn:
    """Print the result's output in order and exit with its status."""
    for stream, text in result.output:
        if stream == "stdout":
            sys.stdout.write(text)
        else:
            typer.echo(text, err=True, nl=False)
    raise typer.Exit(result.exit_code)


# Options lint and check share: same names, same meaning, same [tool.freezegen] table.
FormatOption = Annotated[str, typer.Option("--format", help="text, json, sarif or github.")]
IgnoreOption = Annotated[list[str] | None, typer.Option(help="Skip these codes or prefixes.")]
StrictOption = Annotated[
    bool | None,
    typer.Option("--strict/--no-strict", help="Warnings fail the run too.", show_default=False),
]
NoConfigOption = Annotated[
    bool, typer.Option("--no-config", help="Ignore [tool.freezegen] in pyproject.toml.")
]


@app.command()
def lint(
    specs: Annotated[
        list[Path],
        typer.Argument(
            help="Spec files, or folders searched for *freezegen.yaml / *freezegen.yml.",
            show_default=False,
        ),
    ],
    format: FormatOption = "text",
    select: Annotated[
        list[str] | None,
        typer.Option(help="Only these codes or prefixes (e.g. FG1,FG002)."),
    ] = None,
    ignore: IgnoreOption = None,
    strict: StrictOption = None,
    no_config: NoConfigOption = False,
    trace: Annotated[
        bool | None,
        typer.Option(
            "--trace/--no-trace",
            help="Memory rules use the traced estimate, cached by spec content.",
            show_default=False,
        ),
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Write the fixes that keep the training maths into the specs (comments and "
            "layout kept; atomic writes).",
        ),
    ] = False,
    unsafe_fixes: Annotated[
        bool,
        typer.Option(
            "--unsafe-fixes",
            help="With --fix or --diff, also the fixes that change the training maths "
            "(precision, freezing more, another global batch or warmup).",
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the fixes as a diff; write nothing.")
    ] = False,
) -> None:
    """Check specs for schema errors and inconsistencies, located to line and column.

    Folders with no spec file pass with a warning (exit 0).
    """
    from freezegen.commands import lint as command

    options = command.Options(
        paths=tuple(specs),
        format=format,
        select=_split(select),
        ignore=_split(ignore) or (),
        strict=strict,
        use_config=not no_config,
        color=_terminal_colors(),
        trace=trace,
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        diff=diff,
    )
    _finish(command.run(options))


@app.command()
def check(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Python files, or folders searched for *.py.", show_default=False),
    ],
    format: FormatOption = "text",
    select: Annotated[
        list[str] | None,
        typer.Option(help="Only these codes or prefixes (e.g. FG50,FG507)."),
    ] = None,
    ignore: IgnoreOption = None,
    strict: StrictOption = None,
    no_config: NoConfigOption = False,
    fix: Annotated[
        bool, typer.Option("--fix", help="Apply the safe fixes in place (atomic writes).")
    ] = False,
    unsafe_fixes: Annotated[
        bool,
        typer.Option(
            "--unsafe-fixes",
            help="With --fix, also apply the fixes that rest on an assumption the file does not "
            "prove (their help line says which).",
        ),
    ] = False,
    jobs: Annotated[int, typer.Option("-j", "--jobs", help="Check files in N processes.")] = 1,
) -> None:
    """Check PyTorch training scripts for AMP, accumulation and checkpointing mistakes (FG5xx)."""
    from freezegen.commands import check as command

    options = command.Options(
        paths=tuple(paths),
        format=format,
        select=_split(select),
        ignore=_split(ignore) or (),
        strict=strict,
        use_config=not no_config,
        color=_terminal_colors(),
        fix=fix,
        unsafe_fixes=unsafe_fixes,
        jobs=jobs,
    )
    _finish(command.run(options))


@app.command()
def codemod(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Python files, or folders searched for *.py.", show_default=False),
    ],
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Take freeze, precision, accumulation and checkpointing from this freezegen spec "
            "(linted first: an error lint reports stops the run, exit 2).",
            show_default=False,
        ),
    ] = None,
    freeze: Annotated[
        list[str] | None,
        typer.Option(
            "--freeze",
            help="Freeze parameters whose name matches GLOB (repeatable).",
            metavar="GLOB",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="bf16 or fp16 (autocast; fp16 adds a GradScaler).",
            show_default=False,
        ),
    ] = None,
    grad_accum_steps: Annotated[
        int | None,
        typer.Option(
            "--grad-accum-steps",
            help="Accumulate gradients over N micro-batches.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
    activation_checkpointing: Annotated[
        str | None,
        typer.Option(
            "--activation-checkpointing",
            metavar="hf|MODULE_PATH",
            show_default=False,
            help="hf: a Hugging Face model's gradient_checkpointing_enable; MODULE_PATH (e.g. "
            "blocks): wrap its children with torch's checkpoint_wrapper.",
        ),
    ] = None,
    trainable_only_optimizer: Annotated[
        bool,
        typer.Option(
            "--trainable-only-optimizer",
            help="Give the optimizer only parameters that require grad.",
        ),
    ] = False,
    lora: Annotated[
        str | None,
        typer.Option(
            "--lora",
            help="Attach LoRA adapters with peft before the optimizer and any wrap, e.g. "
            "r=16,alpha=32,targets=q_proj,v_proj[,dropout=0.05]; the optimizer then gets only "
            "trainable parameters.",
            metavar="SETTINGS",
            show_default=False,
        ),
    ] = None,
    diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff (default).")] = False,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files (atomic).")] = False,
    partial: Annotated[
        bool,
        typer.Option(
            "--partial",
            help="Apply the transforms that can act when others cannot, and report those "
            "(default: a file gets every transform asked for, or none).",
        ),
    ] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Print what each file was found to hold (backward, loop, forward pass, "
            "optimizer, scheduler, scaler, own accumulation/autocast), located, instead of "
            "the diff; writes nothing.",
        ),
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when a file would change; write nothing.")
    ] = False,
) -> None:
    """Add freezing, LoRA adapters, AMP, accumulation, checkpointing or a trainable-only
    optimizer to scripts."""
    from freezegen.commands import codemod as command

    # --diff names the default (neither --write nor --check), so it needs no option of its own
    options = command.Options(
        paths=tuple(paths),
        spec=spec,
        freeze=tuple(freeze or ()),
        precision=precision,
        grad_accum_steps=grad_accum_steps,
        activation_checkpointing=activation_checkpointing,
        trainable_only_optimizer=trainable_only_optimizer,
        lora=lora,
        write=write,
        check=check,
        partial=partial,
        explain=explain,
    )
    _finish(command.run(options))


@app.command()
def estimate(
    spec: Annotated[Path, typer.Argument(help="The spec file.", show_default=False)],
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Run two real optimizer steps on fake tensors instead of the analytic model "
            "(needs torch + transformers; the only method for factory models).",
        ),
    ] = False,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="KEY=V1,V2,...: one row per value of a dotted spec key, values read as YAML "
            "(e.g. freeze.layers.first=0,6,12 or precision=fp32,bf16); repeat for a grid.",
            show_default=False,
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="Write out each term's formula with its numbers."),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write stacked bars of the terms (per sweep point) with the budget line to "
            "FILE.svg or FILE.png (needs matplotlib: pip install 'freezegen[plot]').",
            show_default=False,
        ),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu",
            help="GPU1,GPU2,...: one row per card (e.g. A10G,L4,A100-40GB,H100-80GB), to see "
            "which one the run needs; combines with --sweep.",
            metavar="GPUS",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Predict the per-device peak memory of a training step, term by term.

    The spec (and each --sweep point) is linted first, as freezegen lint does: an error stops
    with lint's diagnostics and exit 2. Memory rules (FG2xx) do not stop it: showing a run that
    does not fit is what estimate is for.
    """
    from freezegen.commands import estimate as command

    options = command.Options(
        spec=spec,
        trace=trace,
        format=format,
        sweeps=tuple(sweep or ()),
        explain=explain,
        plot=plot,
        color=format == "table" and _terminal_colors(),
        gpus=tuple(g.strip() for g in gpu.split(",")) if gpu else (),
    )
    _finish(command.run(options))


@app.command()
def fit(
    spec: Annotated[Path, typer.Argument(help="The spec file.", show_default=False)],
    maximize: Annotated[
        list[str],
        typer.Option(
            "--maximize",
            help="A numeric key to make as large as fits (e.g. batch.micro_batch_size, "
            "batch.seq_len); repeat to search several in order.",
            metavar="KEY",
            show_default=False,
        ),
    ],
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="A key no knob may change (e.g. batch.grad_accum_steps: the global batch then "
            "grows with the micro-batch).",
            metavar="KEY",
            show_default=False,
        ),
    ] = None,
    gpu: Annotated[
        str | None,
        typer.Option("--gpu", help="Fit this card (written into the spec).", show_default=False),
    ] = None,
    headroom: Annotated[
        float,
        typer.Option(
            "--headroom", help="Share of the budget to leave spare (FG202 warns below 0.10)."
        ),
    ] = 0.10,
    multiple_of: Annotated[
        int,
        typer.Option(
            "--multiple-of",
            help="Only values that are multiples of N (e.g. 64 for seq_len).",
            metavar="N",
        ),
    ] = 1,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the change as a diff; write nothing.")
    ] = False,
) -> None:
    """Find the largest value of a key whose run fits the budget, and write it into the spec.

    Only knobs that keep the training maths are used (fused optimizer, sdpa, smaller
    micro-batches at the same global batch, activation checkpointing); the table shows every
    value tried. Comments and layout of the spec are kept.
    """
    from freezegen.commands import fit as command

    options = command.Options(
        spec=spec,
        maximize=tuple(maximize),
        keep=tuple(keep or ()),
        gpu=gpu,
        headroom=headroom,
        multiple_of=multiple_of,
        diff=diff,
        color=_terminal_colors(),
    )
    _finish(command.run(options))


@app.command()
def generate(
    spec: Annotated[Path, typer.Argument(help="The spec file.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write the script here (atomically) instead of stdout; - is stdout.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="With -o: exit 1 if the file differs from what SPEC renders."),
    ] = False,
) -> None:
    """Write a runnable PyTorch training script for the spec (CPU or one GPU).

    The spec is linted first, as freezegen lint does: an error stops with lint's diagnostics
    and exit 2, and nothing is written. Memory rules (FG2xx) do not stop it: the script may be
    meant for another card.
    """
    from freezegen.commands import generate as command

    _finish(command.run(command.Options(spec=spec, output=output, check=check)))


@app.command()
def report(
    run: Annotated[
        Path,
        typer.Argument(
            help="The run's checkpoint folder (holding metrics.jsonl) or a metrics.jsonl file.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--out",
            help="Write the figures and report.html into this folder (default: RUN/report).",
            show_default=False,
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="The figures' files: svg or png.")
    ] = "svg",
) -> None:
    """Draw a run's loss, throughput and memory (measured against predicted) from its
    metrics.jsonl, as figures and one self-contained HTML page.

    Needs matplotlib: pip install 'freezegen[plot]'.
    """
    from freezegen.commands import report as command

    _finish(command.run(command.Options(run=run, out=out, format=format)))


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write here (e.g. schemas/freezegen.schema.json) instead of stdout; - is stdout.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="With -o: exit 1 if the file differs from the models' schema."
        ),
    ] = False,
) -> None:
    """Print or write the JSON Schema of the spec format."""
    from freezegen.commands import schema as command

    _finish(command.run(command.Options(output=output, check=check)))


def main() -> None:
    """Console-script entry point: run the app, turning an internal crash into exit 2."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # last resort only: user errors are handled in the commands
        if os.environ.get("FREEZEGEN_DEBUG"):
            raise
        print(
            f"freezegen: internal error: {type(exc).__name__}: {exc}\n"
            "(set FREEZEGEN_DEBUG=1 for the traceback; please report it)",
            file=sys.stderr,
        )
        sys.exit(2)
