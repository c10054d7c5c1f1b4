"""The ``freezegen`` command: parses options, calls the library, prints, exits.

Exit codes follow ruff: 0 clean, 1 findings (errors, or warnings with --strict), 2 a usage
error or an internal one. Nothing here decides what a finding is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from freezegen._version import __version__

if TYPE_CHECKING:
    from freezegen.diagnostics import Diagnostic
    from freezegen.lint import Overrides

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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"freezegen: error: {message}", err=True)
    return typer.Exit(2)


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


def _findings_options(
    format: str,
    select: list[str] | None,
    ignore: list[str] | None,
    strict: bool | None,
    no_config: bool,
    **extra: bool | None,
) -> Overrides:
    """Validate --format and turn the shared selection flags into lint/check Overrides."""
    from freezegen.lint import Overrides
    from freezegen.report import FORMATS

    if format not in FORMATS:
        raise _fail(f"unknown --format {format!r}; choose one of {', '.join(FORMATS)}")
    return Overrides(
        select=_split(select),
        ignore=_split(ignore) or (),
        strict=strict,
        use_config=not no_config,
        **extra,
    )


def _print_findings(
    format: str, diagnostics: Sequence[Diagnostic], files: int, failed: bool, tool: str
) -> NoReturn:
    """Print findings in ``format`` and exit: 1 when they fail the run, else 0."""
    from freezegen.report import render

    color = format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    sys.stdout.write(render(format, diagnostics, files=files, color=color, tool=tool))
    raise typer.Exit(1 if failed else 0)


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
) -> None:
    """Check specs for schema errors and inconsistencies, located to line and column."""
    from freezegen.lint import ConfigError, lint_paths

    overrides = _findings_options(format, select, ignore, strict, no_config, trace=trace)
    try:
        report = lint_paths(specs, overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(f"no such file or folder: {exc}") from None
    _print_findings(format, report.diagnostics, report.files, report.failed, "lint")


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
    jobs: Annotated[int, typer.Option("-j", "--jobs", help="Check files in N processes.")] = 1,
) -> None:
    """Check PyTorch training scripts for AMP, accumulation and checkpointing mistakes (FG5xx)."""
    from freezegen.check import check_paths
    from freezegen.lint import ConfigError

    overrides = _findings_options(format, select, ignore, strict, no_config)
    if jobs < 1:
        raise _fail(f"-j must be at least 1, not {jobs}")
    try:
        checked = check_paths(paths, overrides, fix=fix, jobs=jobs)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(f"no such file or folder: {exc}") from None
    if checked.fixes:
        typer.echo(f"Fixed {checked.fixes} finding(s) in {checked.fixed_files} file(s).", err=True)
    _print_findings(format, checked.diagnostics, checked.files, checked.failed, "check")


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
            help="Take freeze, precision, accumulation and checkpointing from this freezegen spec.",
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
    diff: Annotated[bool, typer.Option("--diff", help="Print a unified diff (default).")] = False,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files (atomic).")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when a file would change; write nothing.")
    ] = False,
) -> None:
    """Add freezing, AMP, accumulation, checkpointing or a trainable-only optimizer to scripts."""
    from freezegen.codemod import (
        CodemodOptions,
        OptionsError,
        codemod_paths,
        options_from_spec,
        unified_diff,
        validate,
    )
    from freezegen.diagnostics import SpecError
    from freezegen.report import render

    if write and check:
        raise _fail("--write and --check exclude each other")
    try:
        if spec is not None:
            if freeze or precision or grad_accum_steps or trainable_only_optimizer:
                raise OptionsError("--spec replaces the other options; give one or the other")
            options = options_from_spec(spec, _checkpointing(activation_checkpointing) or None)
        else:
            options = CodemodOptions(
                freeze=tuple(freeze or ()),
                precision=precision,
                grad_accum_steps=grad_accum_steps or 1,
                activation_checkpointing=_checkpointing(activation_checkpointing),
                trainable_only_optimizer=trainable_only_optimizer,
            )
        validate(options)
        report = codemod_paths(paths, options, write=write)
    except SpecError as exc:
        sys.stderr.write(render("text", exc.diagnostics, files=1))
        raise typer.Exit(2) from None
    except OptionsError as exc:
        raise _fail(str(exc)) from None
    except FileNotFoundError as exc:
        raise _fail(f"no such file or folder: {exc}") from None
    for note in options.notes:
        typer.echo(f"freezegen: note: {note}", err=True)
    for result in report.results:
        for message in (*result.problems, *result.notes):
            typer.echo(str(message), err=True)
        if result.changed and not write and not check:
            sys.stdout.write(unified_diff(result))
        elif result.changed and check:
            typer.echo(f"{result.path}: would add {', '.join(result.applied)}", err=True)
    verb = "rewrote" if write else "would rewrite"
    typer.echo(f"{verb} {len(report.changed)} of {len(report.results)} file(s)", err=True)
    raise typer.Exit(1 if report.problems or (check and report.changed) else 0)


def _checkpointing(value: str | None) -> str | None:
    """``--activation-checkpointing hf`` means a Hugging Face model ("" to the library)."""
    return "" if value == "hf" else value


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
) -> None:
    """Predict the per-device peak memory of a training step, term by term."""
    from freezegen.report.estimate_command import EstimateUsageError, run_estimate

    color = format == "table" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    try:
        out = run_estimate(
            spec,
            trace=trace,
            format=format,
            sweeps=sweep,
            explain=explain,
            plot=plot,
            color=color,
        )
    except EstimateUsageError as exc:
        if not exc.prefixed:
            sys.stderr.write(exc.text + "\n")
            raise typer.Exit(2) from None
        raise _fail(exc.text) from None
    sys.stdout.write(out.stdout)
    for note in out.notes:
        typer.echo(note, err=True)


@app.command()
def generate(
    spec: Annotated[Path, typer.Argument(help="The spec file.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the script here instead of stdout."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="With -o: exit 1 if the file differs from what SPEC renders."),
    ] = False,
) -> None:
    """Write a runnable PyTorch training script for the spec (CPU or one GPU)."""
    from freezegen._io import write_atomic
    from freezegen.diagnostics import SpecError
    from freezegen.generate import GenerateError, render_script
    from freezegen.report import render
    from freezegen.spec import load_spec

    if check and output is None:
        raise _fail("--check needs -o FILE")
    if not spec.exists():
        raise _fail(f"no such file: {spec}")
    try:
        loaded = load_spec(spec)
    except SpecError as exc:
        sys.stderr.write(render("text", exc.diagnostics, files=1))
        raise typer.Exit(2) from None
    try:
        text = render_script(loaded, spec, output.parent if output is not None else None)
    except GenerateError as exc:
        raise _fail(f"{spec}: {exc}") from None
    if output is None:
        sys.stdout.write(text)
        return
    if check:
        try:
            current = output.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            current = None
        if current != text:
            typer.echo(
                f"{output} is out of date; run: freezegen generate {spec} -o {output}", err=True
            )
            raise typer.Exit(1)
        return
    write_atomic(output, text)
    typer.echo(f"wrote {output}", err=True)


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write here (e.g. schemas/freezegen.schema.json) instead of stdout.",
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
    from freezegen._io import write_atomic
    from freezegen.spec.schema import render_schema

    text = render_schema()
    if output is None:
        if check:
            raise _fail("--check needs -o FILE")
        sys.stdout.write(text)
        return
    if check:
        try:
            current = output.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            typer.echo(f"{output} is out of date; run: freezegen schema -o {output}", err=True)
            raise typer.Exit(1)
        return
    write_atomic(output, text)
    typer.echo(f"wrote {output}", err=True)


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
