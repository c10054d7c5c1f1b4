"""Spec v1 as pydantic models: the contract of docs/architecture.md ("The spec"), with a
description on every field.

The descriptions become editor hovers through the generated JSON Schema. Integers and booleans
are strict (``micro_batch_size: true`` is an error, not 1); cross-field problems that make a
spec meaningless (two model sources, a text dataset without a path) are schema errors here,
while choices that are valid but likely wrong are lint rules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from freezegen.hub import REPO_ID_PATTERN
from freezegen.spec.limits import (
    MAX_BLOCKS,
    MAX_COUNT,
    MAX_MEMORY_GIB,
    MAX_SEED,
    MIN_MEMORY_GIB,
)
from freezegen.spec.presets import GPUS, MODEL_PRESETS
from freezegen.spec.selectors import RANGE_PATTERN, existing_blocks, parse_ranges

# Every number is bounded (freezegen.spec.limits says by what): a spec the schema accepts never
# overflows an estimate, the renderer or the generated script.
PositiveInt = Annotated[StrictInt, Field(gt=0, le=MAX_COUNT)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
BlockCount = Annotated[StrictInt, Field(ge=0, le=MAX_BLOCKS)]
BlockIndex = Annotated[StrictInt, Field(ge=0, lt=MAX_BLOCKS)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Gibibytes = Annotated[float, Field(ge=0, le=MAX_MEMORY_GIB, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
# Identifiers joined by single dots, whole: "a..b:c" and "os:system\n" are no import path.
_IMPORT_PATH = rf"^{_DOTTED}:{_DOTTED}$"


def _check_import_path(value: str) -> str:
    if not re.fullmatch(_IMPORT_PATH[1:-1], value):
        raise PydanticCustomError(
            "import_path",
            "'{value}' is not an import path; write it as \"package.module:callable\"",
            {"value": value},
        )
    return value


ImportPath = Annotated[
    str,
    AfterValidator(_check_import_path),
    Field(json_schema_extra={"pattern": _IMPORT_PATH, "examples": ["my_project.models:build"]}),
]
Glob = Annotated[str, Field(min_length=1)]
MODEL_SOURCES = ("preset", "hf_config", "factory", "pretrained")


def _check_pretrained(value: str) -> str:
    if not re.match(REPO_ID_PATTERN, value):
        raise PydanticCustomError(
            "pretrained_id",
            "'{value}' is not a Hugging Face model id; write it as \"org/name\"",
            {"value": value},
        )
    return value


PretrainedId = Annotated[
    str,
    AfterValidator(_check_pretrained),
    Field(
        json_schema_extra={"pattern": REPO_ID_PATTERN, "examples": ["Qwen/Qwen2.5-0.5B"]},
    ),
]


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    # Relative paths mean "next to the spec", not "wherever freezegen happens to be run from".
    base = (info.context or {}).get("base_dir")
    try:
        value = value.expanduser()
    except RuntimeError:  # ~name of a user this machine does not know
        raise PydanticCustomError(
            "path_user", "cannot expand '{value}': no such user", {"value": str(value)}
        ) from None
    return value if value.is_absolute() or base is None else Path(base) / value


SpecPath = Annotated[Path, AfterValidator(_resolve_path)]

# Union members are tagged so an error reports the branch the value was meant for, not all of
# them; the tags are stripped from error locations (see _validate.is_union_tag).
FIRST, LAST, RANGE, LIST, BOOL, CONFIG = (
    "<first>",
    "<last>",
    "<range>",
    "<list>",
    "<bool>",
    "<config>",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=False)


class _SelectsBlocks:
    """A section whose ``layers`` select blocks: freeze, a schedule's unfreeze, checkpointing."""

    if TYPE_CHECKING:  # each section declares its own field (pydantic orders fields by class)
        layers: Any

    def indices(self, depth: int) -> list[int]:
        """Return the sorted indices of the blocks ``layers`` selects in a model of ``depth``
        blocks (none without ``layers``); indices past the model are left out (lint reports
        them: :func:`freezegen.spec.selectors.out_of_range`)."""
        return existing_blocks(self.layers, depth)


class FirstBlocks(_Model):
    first: BlockCount = Field(description="Select blocks 0 .. first-1 (the bottom of the model).")


class LastBlocks(_Model):
    last: BlockCount = Field(description="Select the top `last` blocks.")


def _check_ranges(value: str) -> str:
    try:
        parse_ranges(value)
    except ValueError as exc:
        raise PydanticCustomError("block_range", str(exc)) from None
    return value


BlockRange = Annotated[
    str,
    AfterValidator(_check_ranges),
    Field(
        json_schema_extra={"pattern": RANGE_PATTERN},
        description='Block indices as ranges, e.g. "0-5" or "0-3,8".',
    ),
]

_EVERY = re.compile(r"every-([1-9]\d{0,4})")


def _check_checkpoint_layers(value: str) -> str:
    every = _EVERY.fullmatch(value)
    if value == "all" or (every and int(every.group(1)) <= MAX_BLOCKS):
        return value
    try:
        parse_ranges(value)
    except ValueError as exc:
        if re.match(RANGE_PATTERN, value):  # a range, backwards or past the limit: say which
            raise PydanticCustomError("checkpoint_layers", str(exc)) from None
        raise PydanticCustomError(
            "checkpoint_layers",
            '\'{value}\' is not a block choice; write "all", "every-2" or a range like "0-11"',
            {"value": value},
        ) from None
    return value


def _selector_kind(value: Any) -> str | None:
    # Validation sees the YAML's dicts; serialization (the trace cache's key) sees the models.
    if isinstance(value, (FirstBlocks, LastBlocks)):
        return LAST if isinstance(value, LastBlocks) else FIRST
    if isinstance(value, dict):
        return LAST if "last" in value and "first" not in value else FIRST
    if isinstance(value, str):
        return RANGE
    if isinstance(value, list):
        return LIST
    return None


BlockSelector = Annotated[
    Annotated[FirstBlocks, Tag(FIRST)]
    | Annotated[LastBlocks, Tag(LAST)]
    | Annotated[BlockRange, Tag(RANGE)]
    | Annotated[list[BlockIndex], Tag(LIST)],
    Discriminator(
        _selector_kind,
        custom_error_type="block_selector",
        custom_error_message='expected {first: N}, {last: N}, a range like "0-5" or a list of '
        "block indices",
    ),
]

ModuleKind = Literal["attention", "mlp", "norm"]


class UnfreezeTarget(_SelectsBlocks, _Model):
    embeddings: StrictBool = Field(False, description="Unfreeze the token/position embeddings.")
    layers: BlockSelector | None = Field(None, description="Blocks to unfreeze.")
    modules: list[ModuleKind] | None = Field(
        None, description="Only these module kinds inside the selected blocks (default: all)."
    )
    patterns: list[Glob] = Field(
        default_factory=list, description="Parameter-name globs to unfreeze."
    )


class PlateauSpec(_Model):
    patience: PositiveInt = Field(
        description="Evaluations without an improvement of more than min_delta that make a plateau."
    )
    min_delta: NonNegativeFloat = Field(
        0.0, description="How much the validation loss must fall below its best to improve."
    )


class PlateauTrigger(_Model):
    plateau: PlateauSpec = Field(
        description="Thaw when the validation loss stops improving (needs the eval section)."
    )


class UnfreezeStep(_Model):
    at_step: NonNegativeInt | None = Field(
        None, description="Optimizer step at which the target becomes trainable."
    )
    when: PlateauTrigger | None = Field(
        None,
        description="Instead of at_step: thaw when the validation loss stops improving, "
        "{plateau: {patience: N, min_delta: x}}; plateau entries fire one at a time, in order.",
    )
    unfreeze: UnfreezeTarget = Field(description="What becomes trainable at `at_step`.")

    @model_validator(mode="after")
    def _one_trigger(self) -> UnfreezeStep:
        if (self.at_step is None) == (self.when is None):
            raise PydanticCustomError(
                "unfreeze_trigger",
                "give exactly one of at_step or when: {plateau: ...}",
                {"at": "when" if self.when is not None else ""},
            )
        return self

    @property
    def plateau(self) -> PlateauSpec | None:
        """The plateau this entry waits for; None for an entry due at a fixed step."""
        return None if self.when is None else self.when.plateau


class FreezeSpec(_SelectsBlocks, _Model):
    embeddings: StrictBool = Field(
        False, description="Freeze token/position embeddings (a tied output head follows them)."
    )
    layers: BlockSelector | None = Field(
        None, description='Blocks to freeze: {first: N}, {last: N}, "0-5" or [0, 1, 2].'
    )
    modules: list[ModuleKind] | None = Field(
        None,
        description="Freeze only these module kinds inside the selected blocks "
        "(default: everything in the block).",
    )
    patterns: list[Glob] = Field(
        default_factory=list, description='Extra parameter-name globs to freeze, e.g. "*.ln_f.*".'
    )
    except_: list[Glob] = Field(
        default_factory=list,
        alias="except",
        description='Parameter-name globs never frozen, applied last, e.g. "*.bias".',
    )
    schedule: list[UnfreezeStep] = Field(
        default_factory=list, description="Progressive unfreezing: steps at which parts thaw."
    )


_MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


def _check_module_name(value: str) -> str:
    if not re.fullmatch(_MODULE_NAME[1:-1], value):
        raise PydanticCustomError(
            "module_name",
            "'{value}' is not a module kind or name; write attention, mlp, or a name like "
            "q_proj or mlp.down_proj",
            {"value": value},
        )
    return value


AdapterTarget = Annotated[
    str,
    AfterValidator(_check_module_name),
    Field(
        json_schema_extra={"pattern": _MODULE_NAME},
        description="A module kind (attention, mlp) or the name a block's linears end with "
        "(q_proj, c_attn, mlp.down_proj).",
    ),
]


AdapterTargets = Annotated[
    Annotated[list[AdapterTarget], Tag(LIST)] | Annotated[Literal["all-linear"], Tag("<all>")],
    Discriminator(
        lambda v: LIST if isinstance(v, list) else "<all>",
        custom_error_type="adapter_targets",
        custom_error_message='expected a list of module kinds or names, or "all-linear"',
    ),
]


class AdapterSpec(_SelectsBlocks, _Model):
    kind: Literal["lora"] = Field(
        "lora", description="lora: trainable low-rank matrices beside frozen linears (peft)."
    )
    r: PositiveInt = Field(
        16, description="Rank of each adapter: lora_A is r x in, lora_B out x r."
    )
    alpha: PositiveFloat = Field(
        32.0, description="Scale: an adapter's output is multiplied by alpha / r."
    )
    dropout: Fraction = Field(
        0.0,
        description="Dropout on an adapted linear's input before lora_A (in training it keeps "
        "a full-size copy of that input for backward).",
    )
    targets: AdapterTargets = Field(
        default_factory=lambda: ["attention", "mlp"],
        description='Linears that get an adapter: module kinds ("attention", "mlp"), names '
        '("q_proj", "v_proj"), or "all-linear" (every linear in the blocks).',
    )
    layers: BlockSelector | None = Field(
        None, description="Blocks whose linears get adapters (default: every block)."
    )
    train: list[Glob] = Field(
        default_factory=list,
        description='Base parameter-name globs that still train fully, e.g. "*.lm_head.*"; the '
        "rest of the base is frozen.",
    )
    merge: StrictBool = Field(
        False, description="Also save merged full weights (base + adapter) at the end."
    )


class QuantizationSpec(_Model):
    weights: Literal["nf4", "fp4", "int8", "none"] = Field(
        "none",
        description="Storage of the frozen base linears: nf4 / fp4 (4-bit, bitsandbytes), int8, "
        "or none.",
    )
    double_quant: StrictBool = Field(
        True, description="4-bit only: quantize the block scales too (QLoRA's double quantization)."
    )
    compute: Literal["bf16", "fp16", "fp32"] = Field(
        "bf16", description="dtype a quantized weight is dequantized to for its matmuls."
    )
    library: Literal["bitsandbytes", "torchao"] = Field(
        "bitsandbytes",
        description="The library that stores and multiplies the quantized weights: bitsandbytes "
        "(nf4 / fp4 / int8: LLM.int8) or torchao (int8 only: int8 weight-only with one scale "
        "per output row, through transformers' TorchAoConfig; its matmul computes in the "
        "input's dtype and, in training, keeps each layer's weight cast to that dtype until "
        "the layer's backward).",
    )

    @model_validator(mode="after")
    def _library_stores_weights(self) -> QuantizationSpec:
        if self.library == "torchao" and self.weights in ("nf4", "fp4"):
            raise PydanticCustomError(
                "quantization_library",
                "{weights} is a bitsandbytes format: torchao quantizes weights: int8 "
                "(int8 weight-only); set weights: int8 or drop library: torchao",
                {"weights": self.weights, "at": "library"},
            )
        return self


class ModelSpec(_Model):
    preset: str | None = Field(
        None,
        description="A built-in architecture (no weights), e.g. gpt2-medium or llama-3-8b.",
        json_schema_extra={"enum": sorted(MODEL_PRESETS)},
    )
    hf_config: SpecPath | None = Field(
        None, description="A local Hugging Face config.json, or the folder holding it."
    )
    factory: ImportPath | None = Field(
        None, description='"package.module:callable" returning a torch.nn.Module.'
    )
    pretrained: PretrainedId | None = Field(
        None,
        description="A Hugging Face Hub model id (org/name): its config.json, and for the "
        "generated script its weights, from the local Hugging Face cache (HF_HUB_CACHE / HF_HOME) "
        "or the Hub when reachable.",
    )
    weights: SpecPath | None = Field(
        None, description="Optional local weights: a Hugging Face folder or a state_dict file."
    )
    head: Literal["causal-lm", "sequence-classification"] = Field(
        "causal-lm", description="Task head on top of the backbone."
    )
    num_labels: PositiveInt | None = Field(
        None, description="Classes for a sequence-classification head (default 2)."
    )
    attention: Literal["sdpa", "eager"] = Field(
        "sdpa", description="sdpa saves no attention matrix; eager saves batch*heads*seq^2 of it."
    )
    dropout: Fraction | None = Field(
        None, description="Override every dropout probability (default: the model's own)."
    )

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str | None) -> str | None:
        if value is not None and value not in MODEL_PRESETS:
            raise PydanticCustomError(
                "unknown_choice",
                "unknown model preset '{value}'",
                {"value": value, "choices": sorted(MODEL_PRESETS)},
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        given = [k for k in MODEL_SOURCES if getattr(self, k) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise PydanticCustomError(
                "model_source",
                "give exactly one of preset, hf_config, factory or pretrained (found: {found})",
                {"found": found},
            )
        if self.pretrained is not None and self.weights is not None:
            raise PydanticCustomError(
                "model_source",
                "model.pretrained loads its own weights; drop weights, or use hf_config with "
                "weights for a local checkpoint",
                {},
            )
        return self


CheckpointLayers = Annotated[
    Annotated[
        str,
        AfterValidator(_check_checkpoint_layers),
        Field(
            json_schema_extra={
                "pattern": r"^(all|every-[1-9]\d{0,4}|" + RANGE_PATTERN[1:-1] + r")$"
            }
        ),
        Tag(RANGE),
    ]
    | Annotated[list[BlockIndex], Tag(LIST)],
    Discriminator(
        lambda v: RANGE if isinstance(v, str) else LIST if isinstance(v, list) else None,
        custom_error_type="checkpoint_layers",
        custom_error_message='expected "all", "every-N", a range like "0-11" or a list of '
        "block indices",
    ),
]


class AdvancedCheckpointing(_SelectsBlocks, _Model):
    layers: CheckpointLayers = Field(
        "all", description='Blocks to checkpoint: "all", "every-2", a range "0-11" or a list.'
    )
    reentrant: StrictBool = Field(
        False,
        description="Use torch's reentrant checkpoint. It drops gradients when a "
        "checkpointed block's inputs are all frozen; leave false unless you know why.",
    )


def _bool_or_config(value: Any) -> str | None:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (dict, AdvancedCheckpointing)):
        return CONFIG
    return None


ActivationCheckpointing = Annotated[
    Annotated[StrictBool, Tag(BOOL)] | Annotated[AdvancedCheckpointing, Tag(CONFIG)],
    Discriminator(
        _bool_or_config,
        custom_error_type="checkpointing",
        custom_error_message="expected true, false or {layers: ...}",
    ),
]


class OptimizerSpec(_Model):
    name: Literal["adamw", "adam", "sgd"] = Field("adamw", description="Optimizer.")
    lr: PositiveFloat = Field(2.0e-5, description="Peak learning rate.")
    weight_decay: NonNegativeFloat = Field(0.0, description="Weight decay.")
    betas: tuple[Fraction, Fraction] = Field((0.9, 0.999), description="Adam/AdamW betas.")
    momentum: Fraction = Field(
        0.0, description="SGD momentum; above 0 it keeps one state tensor per trainable parameter."
    )
    implementation: Literal["foreach", "fused", "loop"] = Field(
        "foreach",
        description="foreach/fused need temporaries the size of the trainable "
        "parameters; loop steps one tensor at a time.",
    )


class SchedulerSpec(_Model):
    name: Literal["constant", "linear", "cosine"] = Field("constant", description="LR schedule.")
    warmup_steps: NonNegativeInt = Field(0, description="Linear warmup steps from 0 to lr.")


class BatchSpec(_Model):
    micro_batch_size: PositiveInt = Field(description="Sequences per forward/backward per device.")
    grad_accum_steps: PositiveInt = Field(1, description="Micro-batches per optimizer step.")
    seq_len: PositiveInt = Field(description="Tokens per sequence.")
    global_batch_size: PositiveInt | None = Field(
        None,
        description="Optional check: must equal micro_batch_size * grad_accum_steps * "
        "data-parallel world size.",
    )


class EarlyStopSpec(_Model):
    patience: PositiveInt = Field(
        description="Evaluations without an improvement of more than min_delta before stopping."
    )
    min_delta: NonNegativeFloat = Field(
        0.0, description="How much the validation loss must fall below its best to improve."
    )


class EvalSpec(_Model):
    every_steps: PositiveInt = Field(
        description="Evaluate every N optimizer steps (and after the last one)."
    )
    max_batches: PositiveInt = Field(
        50, description="Micro-batches of validation data per evaluation (the first ones)."
    )
    at_start: StrictBool = Field(
        False, description="Also evaluate the initial weights, as a reference."
    )


class TrainSpec(_Model):
    max_steps: PositiveInt = Field(1000, description="Optimizer steps to run.")
    grad_clip: PositiveFloat | None = Field(1.0, description="Clip the gradient norm (null: off).")
    seed: Annotated[StrictInt, Field(ge=0, le=MAX_SEED)] = Field(
        1234, description="Seed for every random generator (at most 2**63 - 1)."
    )
    log_every: PositiveInt = Field(10, description="Print a progress line every N steps.")
    early_stop: EarlyStopSpec | None = Field(
        None, description="Stop when the validation loss stops improving (needs eval)."
    )


# The file sources: `text` reads one text file as a single document; the others are read through
# the datasets library (the optional extra freezegen[data]); `saved` is a save_to_disk folder.
FILE_SOURCES = ("text", "jsonl", "json", "csv", "parquet", "saved")


class ValidationData(_Model):
    path: SpecPath | None = Field(
        None, description="A validation file or saved folder, read like data.path."
    )
    split: Annotated[float, Field(gt=0.0, lt=1.0)] | None = Field(
        None,
        description="Hold out this fraction of data.path's records (each record by a draw "
        "seeded by train.seed: the same split in every run).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> ValidationData:
        if (self.path is None) == (self.split is None):
            raise PydanticCustomError(
                "validation_kind",
                "data.validation takes exactly one of path and split",
                {"at": "path" if self.path is not None else "split"},
            )
        return self


class DataSpec(_Model):
    source: Literal["synthetic", "text", "jsonl", "json", "csv", "parquet", "saved", "factory"] = (
        Field(
            "synthetic",
            description="synthetic tokens; a local text file (one document); jsonl, json, csv "
            "or parquet records or a saved dataset folder (save_to_disk), read through the "
            "datasets library; or a factory.",
        )
    )
    path: SpecPath | None = Field(None, description="The local data file or folder.")
    tokenizer: SpecPath | None = Field(None, description="Local tokenizer folder (file sources).")
    format: Literal["text", "completion", "chat"] = Field(
        "text",
        description="text: every token is a target; completion: prompt then completion, the "
        "loss only on the completion; chat: messages rendered with the tokenizer's chat "
        "template, the loss only on assistant turns.",
    )
    text_field: str = Field("text", description="Field holding the text (format text).")
    prompt_field: str = Field("prompt", description="Field holding the prompt (completion).")
    completion_field: str = Field(
        "completion", description="Field holding the completion (completion)."
    )
    messages_field: str = Field(
        "messages", description="Field holding the [{role, content}] messages (chat)."
    )
    packing: StrictBool = Field(
        False,
        description="Concatenate documents and cut them into rows of seq_len (no padding "
        "but the last row's); false: one example per row, padded to seq_len.",
    )
    truncation: Literal["cut", "drop"] = Field(
        "cut",
        description="An example longer than seq_len (without packing): cut keeps its first "
        "seq_len tokens (targets cut off are lost), drop leaves it out.",
    )
    streaming: StrictBool = Field(
        False,
        description="Read the records as a stream instead of tokenizing them all first (files "
        "larger than memory); shuffled within a seeded buffer.",
    )
    validation: ValidationData | None = Field(
        None, description="Validation data: {path: ...} or {split: 0.05}."
    )
    factory: ImportPath | None = Field(
        None, description='"package.module:callable" returning a torch Dataset (factory).'
    )

    @property
    def packed_rows(self) -> bool:
        """Whether the script cuts rows from concatenated documents, each document's
        position_ids restarting at 0 (packing, or one text file cut into rows): transformers
        then masks attention across the restarts, a (b, 1, s, s) mask in every block."""
        return self.source in FILE_SOURCES and (self.packing or self.source == "text")

    @model_validator(mode="after")
    def _source_inputs(self) -> DataSpec:
        need = {
            "factory": ("factory",),
            "synthetic": (),
            **{source: ("path", "tokenizer") for source in FILE_SOURCES},
        }[self.source]
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise PydanticCustomError(
                "missing_for_source",
                "data source '{source}' needs {missing}",
                {"source": self.source, "missing": " and ".join(missing), "at": "source"},
            )
        return self


class CheckpointSpec(_Model):
    dir: SpecPath = Field(
        Path("checkpoints"), validate_default=True, description="Where checkpoints are written."
    )
    every_steps: PositiveInt | None = Field(
        500, description="Save every N steps (null: only at the end)."
    )
    keep_last: PositiveInt = Field(3, description="Checkpoints kept; older ones are deleted.")
    keep_best: StrictBool = Field(
        False,
        description="Also keep the checkpoint with the lowest validation loss (best.pt, or a "
        "best folder under FSDP), never rotated away (needs eval).",
    )
    resume: str = Field(
        "auto",
        min_length=1,
        description="auto: newest complete checkpoint in dir; never; or a checkpoint path "
        "(relative to the spec's folder).",
    )

    @field_validator("resume")
    @classmethod
    def _resume_path(cls, value: str, info: ValidationInfo) -> str:
        if value in ("auto", "never"):
            return value
        return str(_resolve_path(Path(value), info))


class LoggingSpec(_Model):
    tensorboard: StrictBool = Field(
        False,
        description="Also write TensorBoard events into checkpoint.dir (needs the tensorboard "
        "package where the script runs).",
    )


class MemorySpec(_Model):
    snapshot: StrictBool = Field(
        False,
        description="On CUDA, record the allocator's history and dump a snapshot for "
        "pytorch.org/memory_viz into checkpoint.dir at the end of the run.",
    )


class HardwareSpec(_Model):
    gpu: str | None = Field(
        None,
        description="A known GPU model, e.g. A100-80GB, or auto: the GPU of the machine that "
        "lints, estimates or generates (nvidia-smi; none there: no budget, lint says so).",
        json_schema_extra={"enum": [*sorted(GPUS), "auto"]},
    )
    memory_gib: Annotated[Gibibytes, Field(ge=MIN_MEMORY_GIB)] | None = Field(
        None, description="Memory per GPU, for an unlisted card (0.001 to 1048576)."
    )
    bf16: StrictBool | None = Field(None, description="Whether an unlisted card supports bf16.")
    gpus_per_node: PositiveInt = Field(1, description="GPUs per node.")
    nodes: PositiveInt = Field(1, description="Nodes.")
    reserve_gib: Gibibytes = Field(0.0, description="Memory kept free for other processes.")

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, value: str | None) -> str | None:
        if value is not None and value not in GPUS:
            raise PydanticCustomError(
                "unknown_choice", "unknown GPU '{value}'", {"value": value, "choices": sorted(GPUS)}
            )
        return value

    @model_validator(mode="after")
    def _one_memory(self) -> HardwareSpec:
        if (self.gpu is None) == (self.memory_gib is None):
            raise PydanticCustomError(
                "hardware_memory",
                "give exactly one of gpu or memory_gib",
                {"at": "gpu" if self.gpu else ""},
            )
        return self

    @property
    def world_size(self) -> int:
        return self.gpus_per_node * self.nodes


class DistributedSpec(_Model):
    strategy: Literal["none", "ddp", "fsdp"] = Field(
        "none", description="none, or ddp / fsdp (FSDP2) launched with torchrun."
    )


class Spec(_Model):
    """A freezegen fine-tuning spec (version 1)."""

    @model_validator(mode="before")
    @classmethod
    def _local_gpu(cls, data: Any) -> Any:
        # Every way a spec is validated (a file, a sweep point, a fit candidate) sees the card
        # itself, never "auto".
        from freezegen.spec.local_gpu import resolve_auto

        return resolve_auto(data)

    model_config = ConfigDict(title="freezegen spec", extra="forbid", frozen=True)

    version: Literal[1] = Field(description="Spec format version.")
    model: ModelSpec = Field(description="Which model to build.")
    freeze: FreezeSpec = Field(default_factory=FreezeSpec, description="What to freeze.")
    precision: Literal["fp32", "fp16", "bf16", "bf16-pure"] = Field(
        "fp32", description="fp16: autocast + GradScaler; bf16: autocast; bf16-pure: bf16 weights."
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="Optimizer.")
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec, description="LR schedule.")
    batch: BatchSpec = Field(description="Batch shape and accumulation.")
    activation_checkpointing: ActivationCheckpointing = Field(
        False, description="Recompute block activations in backward: true, or {layers: ...}."
    )
    compile: StrictBool = Field(False, description="torch.compile the model.")
    train: TrainSpec = Field(default_factory=TrainSpec, description="Training loop.")
    data: DataSpec = Field(default_factory=DataSpec, description="Training data.")
    eval: EvalSpec | None = Field(
        None, description="Validation loss and perplexity every N steps on held-out data."
    )
    # Validated from {} rather than built by a factory, so checkpoint.dir resolves next to the
    # spec even when the section is left out.
    checkpoint: CheckpointSpec = Field(
        default_factory=dict, validate_default=True, description="Checkpoints."
    )
    hardware: HardwareSpec | None = Field(None, description="The GPU(s) to budget for.")
    logging: LoggingSpec = Field(
        default_factory=LoggingSpec, description="Where metrics go besides metrics.jsonl."
    )
    memory: MemorySpec = Field(
        default_factory=MemorySpec, description="Memory diagnostics of the run."
    )
    distributed: DistributedSpec = Field(
        default_factory=DistributedSpec, description="Multi-GPU strategy."
    )
    adapter: AdapterSpec | None = Field(
        None, description="Train adapters on a frozen base (LoRA) instead of base weights."
    )
    quantization: QuantizationSpec | None = Field(
        None, description="Quantized storage of the frozen base weights (QLoRA, INT8)."
    )

    @property
    def checkpointing(self) -> AdvancedCheckpointing | None:
        """The activation-checkpointing settings, or None when it is off."""
        ac = self.activation_checkpointing
        if ac is True:
            return AdvancedCheckpointing()
        return ac or None


def adapter_sections(spec: Spec) -> str | None:
    """The sections of ``spec`` that train adapters or quantize the base (``adapter``,
    ``quantization``), joined for a message; None when it has neither (``weights: none``
    quantizes nothing)."""
    named = []
    if spec.adapter is not None:
        named.append("adapter")
    if spec.quantization is not None and spec.quantization.weights != "none":
        named.append("quantization")
    return " and ".join(named) or None


SPEC_FILENAME = re.compile(r"(^|/)([^/]+\.)?freezegen\.ya?ml$")
