"""``freezegen codemod``: add freezing, AMP, accumulation, checkpointing or a trainable-only
optimizer to existing training scripts, as a diff, in place, or as a check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from freezegen.commands.result import CommandResult, UsageError, reports_usage_errors

if TYPE_CHECKING:
    from freezegen.codemod import CodemodOptions, CodemodResult


@dataclass(frozen=True)
class Options:
    """The edits come from ``spec`` or from the other flags, never both.

    ``activation_checkpointing``: "hf" (a Hugging Face model's gradient_checkpointing_enable)
    or a module path whose children get wrapped. Neither ``write`` nor ``check``: show diffs.
    ``partial``: apply the transforms that can act when others cannot (default: all or none).
    ``explain``: print what was found in each file instead of the diff; writes nothing.
    """

    paths: tuple[Path, ...]
    spec: Path | None = None
    freeze: tuple[str, ...] = ()
    precision: str | None = None
    grad_accum_steps: int | None = None
    activation_checkpointing: str | None = None
    trainable_only_optimizer: bool = False
    lora: str | None = None
    """``r=16,alpha=32,targets=q_proj,v_proj``: LoRA adapters (implies a trainable-only
    optimizer)."""
    write: bool = False
    check: bool = False
    partial: bool = False
    explain: bool = False


@reports_usage_errors
def run(options: Options) -> CommandResult:
    """Rewrite (or diff, or check) the scripts; exit status 1 when a file has problems or, with
    ``check``, would change; 2 for a usage error (conflicting options, a spec with an error
    ``lint`` reports, missing path)."""
    from freezegen.codemod import OptionsError, codemod_paths, unified_diff, validate
    from freezegen.diagnostics import SpecError
    from freezegen.report import render

    if options.write and options.check:
        raise UsageError("--write and --check exclude each other")
    if options.explain and (options.write or options.check):
        raise UsageError("--explain shows what was found and writes nothing: drop --write/--check")
    try:
        edits = _edits(options)
        validate(edits)
        report = codemod_paths(
            options.paths,
            edits,
            write=options.write,
            partial=options.partial,
            explain=options.explain,
        )
    except SpecError as exc:
        raise UsageError(render("text", exc.diagnostics, files=1), prefixed=False) from None
    except OptionsError as exc:
        raise UsageError(str(exc)) from None
    except FileNotFoundError as exc:
        raise UsageError(f"no such file or folder: {exc}") from None
    result = CommandResult()
    for note in edits.notes:
        result.err(f"freezegen: note: {note}")
    for changed in report.results:
        if options.explain and changed.seen:  # a file that did not parse has no map
            result.out(_map(changed))
        for message in (*changed.problems, *changed.actions, *changed.notes):
            result.err(str(message))
        if changed.not_applied and changed.applied:
            result.err(
                f"{changed.path}: applied {', '.join(changed.applied)}; not applied "
                f"{', '.join(changed.not_applied)}"
            )
        if options.explain:
            continue
        if changed.changed and not options.write and not options.check:
            result.out(unified_diff(changed))
        elif changed.changed and options.check:
            result.err(f"{changed.path}: would add {', '.join(changed.applied)}")
        if changed.changed and options.write:
            result.written.append(Path(changed.path))
    verb = "rewrote" if options.write else "would rewrite"
    partly = sum(bool(r.changed and r.not_applied) for r in report.results)
    partly_said = f" ({partly} in part)" if partly else ""
    actions = sum(len(r.actions) for r in report.results)
    actions_said = f"; {actions} setting(s) of the scripts' own for you to set (above)"
    result.err(
        f"{verb} {len(report.changed)}{partly_said} of {len(report.results)} file(s)"
        f"{actions_said if actions else ''}"
    )
    result.exit_code = 1 if report.problems or (options.check and report.changed) else 0
    return result


def _map(result: CodemodResult) -> str:
    """One file's map: an entry a line, ``what  line  text`` (a dash where it has no line)."""
    lines = [result.path]
    width = max((len(s.what) for s in result.seen), default=0)
    for seen in result.seen:
        where = str(seen.line) if seen.line else "-"
        lines.append(f"  {seen.what:<{width}}  {where:>5}  {seen.text}")
    if result.applied:
        lines.append(f"  {'would add':<{width}}  {'':>5}  {', '.join(result.applied)}")
    if result.kept:
        lines.append(f"  {'yours to set':<{width}}  {'':>5}  {', '.join(result.kept)}")
    return "\n".join(lines) + "\n"


def _edits(options: Options) -> CodemodOptions:
    """The codemod options the flags (or the spec) ask for; raises OptionsError, SpecError, and
    UsageError for a spec ``lint`` finds an error in."""
    from freezegen.codemod import CodemodOptions, OptionsError, options_from_spec
    from freezegen.codemod.options import parse_lora
    from freezegen.commands.specs import load_or_report

    # the library spells "a Hugging Face model" as ""; on the command line it is "hf"
    checkpointing = (
        "" if options.activation_checkpointing == "hf" else options.activation_checkpointing
    )
    if options.spec is not None:
        if (
            options.freeze
            or options.precision
            or options.grad_accum_steps
            or options.trainable_only_optimizer
            or options.lora
        ):
            raise OptionsError("--spec replaces the other options; give one or the other")
        load_or_report(options.spec)  # the gate every spec-reading command goes through
        return options_from_spec(options.spec, checkpointing or None)
    lora = parse_lora(options.lora) if options.lora is not None else None
    return CodemodOptions(
        freeze=options.freeze,
        precision=options.precision,
        grad_accum_steps=options.grad_accum_steps or 1,
        activation_checkpointing=checkpointing,
        # adapters leave the base frozen: an optimizer over all of it holds what never trains
        trainable_only_optimizer=options.trainable_only_optimizer or lora is not None,
        lora=lora,
    )
