"""What the codemod is asked to add, from command-line flags or from a freezegen spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HF = ""
"""``activation_checkpointing`` value meaning "the model is a Hugging Face model"."""


@dataclass(frozen=True)
class LoraOptions:
    """LoRA adapters to attach (peft's LoraConfig): rank, alpha, dropout, target module names."""

    r: int
    alpha: float
    targets: tuple[str, ...]
    dropout: float = 0.0

    def config(self) -> str:
        """The ``LoraConfig(...)`` expression, as the rewritten script spells it."""
        alpha = int(self.alpha) if float(self.alpha).is_integer() else self.alpha
        targets = ", ".join(f'"{t}"' for t in self.targets)
        return (
            f"LoraConfig(r={self.r}, lora_alpha={alpha}, lora_dropout={self.dropout}, "
            f"target_modules=[{targets}])"
        )


def parse_lora(text: str) -> LoraOptions:
    """``r=16,alpha=32,targets=q_proj,v_proj[,dropout=0.05]``: a value without ``=`` continues
    the key before it (only ``targets`` takes several). Raises OptionsError."""
    values: dict[str, list[str]] = {}
    key = None
    for item in (part.strip() for part in text.split(",")):
        name, eq, value = item.partition("=")
        if eq:
            key = name.strip()
            if key not in ("r", "alpha", "dropout", "targets"):
                raise OptionsError(
                    f"--lora: unknown setting {key!r}; give r=, alpha=, targets= and dropout="
                )
            if key in values:
                raise OptionsError(f"--lora: {key} is given twice")
            values[key] = [value.strip()]
        elif key == "targets" and item:
            values[key].append(item)
        else:
            raise OptionsError(f"--lora: {item!r} is not key=value (only targets takes a list)")
    for required in ("r", "targets"):
        if not values.get(required) or not values[required][0]:
            raise OptionsError(
                f"--lora needs {required}=, e.g. r=16,alpha=32,targets=q_proj,v_proj"
            )
    try:
        r = int(values["r"][0])
        alpha = float(values.get("alpha", [str(2 * r)])[0])
        dropout = float(values.get("dropout", ["0.0"])[0])
    except ValueError as exc:
        raise OptionsError(f"--lora: {exc}") from None
    if r < 1 or alpha <= 0 or not 0 <= dropout < 1:
        raise OptionsError("--lora: r must be at least 1, alpha above 0, dropout in [0, 1)")
    targets = tuple(values["targets"])
    bad = [t for t in targets if not all(p.isidentifier() or p.isdigit() for p in t.split("."))]
    if bad:
        raise OptionsError(f"--lora: {bad[0]!r} is not a module name")
    return LoraOptions(r, alpha, targets, dropout)


@dataclass(frozen=True)
class CodemodOptions:
    """The features to add; an empty option adds nothing.

    ``activation_checkpointing`` is None (off), ``HF`` (``gradient_checkpointing_enable``) or a
    dotted module path inside the model (``blocks``, ``transformer.h``) whose children are
    wrapped with torch's ``checkpoint_wrapper``.
    """

    freeze: tuple[str, ...] = ()
    precision: str | None = None
    grad_accum_steps: int = 1
    activation_checkpointing: str | None = None
    trainable_only_optimizer: bool = False
    lora: LoraOptions | None = None
    """Attach LoRA adapters (peft) to the model before its optimizer and any wrap; the base
    is then frozen by peft, and the optimizer gets only the trainable parameters."""
    notes: tuple[str, ...] = field(default=(), compare=False)
    """What a spec asked for that the codemod cannot express (reported, not applied)."""

    @property
    def empty(self) -> bool:
        return not (
            self.freeze
            or self.precision
            or self.grad_accum_steps > 1
            or self.activation_checkpointing is not None
            or self.trainable_only_optimizer
            or self.lora is not None
        )


class OptionsError(Exception):
    """Flags or a spec that cannot drive the codemod (a usage error)."""


def validate(options: CodemodOptions) -> None:
    """Raise OptionsError for values the codemod cannot use."""
    if options.precision not in (None, "bf16", "fp16"):
        raise OptionsError(f"--precision must be bf16 or fp16, not {options.precision!r}")
    if options.grad_accum_steps < 1:
        raise OptionsError(f"--grad-accum-steps must be at least 1, not {options.grad_accum_steps}")
    path = options.activation_checkpointing
    if path and not all(part.isidentifier() or part.isdigit() for part in path.split(".")):
        raise OptionsError(f"--activation-checkpointing: {path!r} is not a dotted module path")
    if options.lora is not None and options.freeze:
        raise OptionsError(
            "--lora freezes the whole base model already; --freeze beside it has no meaning"
        )
    if options.empty:
        raise OptionsError(
            "nothing to do: give --spec or at least one of --freeze, --precision, "
            "--grad-accum-steps, --activation-checkpointing, --trainable-only-optimizer, --lora"
        )


def options_from_spec(path: str | Path, module_path: str | None = None) -> CodemodOptions:
    """The options a spec implies: freeze globs (resolved through its architecture), precision,
    accumulation, checkpointing, and always a trainable-only optimizer.

    Raises SpecError for an invalid spec and OptionsError for one the codemod cannot express.
    """
    from freezegen.arch import ArchitectureError, architecture_for
    from freezegen.spec import load_spec

    spec = load_spec(path)
    notes: list[str] = []
    try:
        arch = architecture_for(spec.model)
    except ArchitectureError as exc:
        raise OptionsError(str(exc)) from None
    lora = _lora_from_spec(spec, arch, notes)
    globs = [] if lora is not None else _freeze_globs(spec, arch, notes)
    precision = {"fp16": "fp16", "bf16": "bf16"}.get(spec.precision)
    if spec.precision == "bf16-pure":
        notes.append("precision bf16-pure is not added: cast the model with .to(torch.bfloat16)")
    checkpointing = None
    if spec.checkpointing is not None:
        if module_path:
            checkpointing = module_path
        elif arch is not None:
            checkpointing = HF
            if spec.checkpointing.layers != "all":
                notes.append(
                    "gradient_checkpointing_enable checkpoints every block, not only "
                    f"{spec.checkpointing.layers!r}"
                )
        else:
            raise OptionsError(
                "activation_checkpointing with a factory model needs the module path of its "
                "blocks: --activation-checkpointing MODULE_PATH"
            )
    if spec.freeze.schedule:
        notes.append("freeze.schedule (progressive unfreezing) is not added")
    return CodemodOptions(
        freeze=tuple(globs),
        precision=precision,
        grad_accum_steps=spec.batch.grad_accum_steps,
        activation_checkpointing=checkpointing,
        trainable_only_optimizer=True,
        lora=lora,
        notes=tuple(notes),
    )


def _lora_from_spec(spec: object, arch: object, notes: list[str]) -> LoraOptions | None:
    """The adapters a spec's ``adapter`` section asks for, on the module names its plan finds
    (the base is then frozen by peft, so the freeze section is not added); None without one."""
    adapter = spec.adapter  # type: ignore[attr-defined]
    quantization = spec.quantization  # type: ignore[attr-defined]
    if quantization is not None and quantization.weights != "none":
        notes.append(
            f"quantization.weights {quantization.weights} is not added: load the base with "
            "transformers' BitsAndBytesConfig where the script builds it"
        )
    if adapter is None:
        return None
    if arch is None:
        raise OptionsError(
            "adapter targets are resolved through the model's module names, which a factory "
            "model only has once built: use --lora r=...,targets=... with its module names"
        )
    from freezegen.arch.adapters import plan_adapter
    from freezegen.arch.families import family_of
    from freezegen.arch.params import parameter_table

    model = spec.model  # type: ignore[attr-defined]
    params = parameter_table(arch, model.head, model.num_labels or 2)  # type: ignore[arg-type]
    plan = plan_adapter(adapter, family_of(arch), params, arch.num_layers)  # type: ignore[attr-defined]
    if not plan.target_modules:
        raise OptionsError("the adapter section selects no linear of this model (lint: FG115)")
    if adapter.train:
        notes.append(
            "adapter.train is not added: give those parameters requires_grad_(True) after "
            "get_peft_model, or peft's modules_to_save"
        )
    if adapter.merge:
        notes.append("adapter.merge is not added: call merge_and_unload() where the script saves")
    return LoraOptions(adapter.r, adapter.alpha, tuple(plan.target_modules), adapter.dropout)


def _freeze_globs(spec: object, arch: object, notes: list[str]) -> list[str]:
    """Parameter-name globs freezing what ``spec.freeze`` selects, as few as possible."""
    from freezegen.arch.freeze import plan_freeze
    from freezegen.arch.params import parameter_table

    freeze = spec.freeze  # type: ignore[attr-defined]
    if arch is None:
        if freeze.embeddings or freeze.layers is not None or freeze.except_:
            raise OptionsError(
                "freeze.embeddings/layers/except need the model's parameter names, which a "
                "factory model only has once built: use freeze.patterns or --freeze GLOB"
            )
        return list(freeze.patterns)
    model = spec.model  # type: ignore[attr-defined]
    params = parameter_table(arch, model.head, model.num_labels or 2)  # type: ignore[arg-type]
    plan = plan_freeze(freeze, params, arch.num_layers)  # type: ignore[attr-defined]
    globs: list[str] = []
    for p in params:
        if p.name not in plan.frozen:
            continue
        if p.block is not None and p.block in plan.frozen_blocks:
            marker = f".{p.block}."
            glob = p.name[: p.name.index(marker) + len(marker)] + "*"
        else:
            glob = p.name
        if glob not in globs:
            globs.append(glob)
    if plan.misses:
        notes.extend(m.reason for m in plan.misses)
    return globs
