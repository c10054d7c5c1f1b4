"""What a rule may ask about a spec, computed once per file and only when a rule asks."""

from __future__ import annotations

from functools import cached_property

from freezegen.arch import (
    ArchitectureError,
    ModelNotCached,
    UnknownArchitecture,
    UnsupportedHead,
    architecture_for,
)
from freezegen.arch.freeze import FreezePlan
from freezegen.arch.params import Param, parameter_table
from freezegen.arch.training import plan_training
from freezegen.diagnostics import Diagnostic
from freezegen.lint.fix import SpecFix
from freezegen.memory.estimate import EstimateError, MemoryEstimate
from freezegen.spec import Document, Spec
from freezegen.spec.presets import GPUS, Architecture, Gpu


class LintContext:
    """One loaded spec plus derived facts (architecture, parameters, freeze plan, GPU)."""

    def __init__(self, path: str, document: Document, spec: Spec, *, trace: bool = False) -> None:
        self.path, self.document, self.spec, self.trace = path, document, spec, trace
        self.architecture_error: str | None = None
        self.model_not_cached = False  # the error is a pretrained model missing from the cache
        self.unknown_architecture = False  # a model_type no family knows (the trace measures it)
        self.head_unsupported = False  # the error is a head the family has no class for
        self.memory_error: str | None = None
        self.memory_peak_entry: int | None = None
        """The freeze.schedule entry whose thaw reaches ``memory``'s peak (None: none does)."""
        self.fixes: dict[Diagnostic, SpecFix] = {}
        """The edits rules offer with their findings (Rule.at), for ``lint --fix``."""

    @cached_property
    def architecture(self) -> Architecture | None:
        """The model's dimensions; None for factory models or an unreadable config."""
        try:
            return architecture_for(self.spec.model)
        except ArchitectureError as exc:
            self.architecture_error = str(exc)
            self.model_not_cached = isinstance(exc, ModelNotCached)
            self.unknown_architecture = isinstance(exc, UnknownArchitecture)
            self.head_unsupported = isinstance(exc, UnsupportedHead)
            return None

    @cached_property
    def params(self) -> list[Param] | None:
        arch = self.architecture
        if arch is None:
            return None
        return parameter_table(arch, self.spec.model.head, self.spec.model.num_labels or 2)

    @cached_property
    def freeze_plan(self) -> FreezePlan | None:
        """What trains at step 0 (freeze, adapters, quantized storage: plan_training); None
        when the architecture is unknown."""
        if self.params is None or self.architecture is None:
            return None
        return plan_training(self.spec, self.architecture, self.params)

    @cached_property
    def memory(self) -> MemoryEstimate | None:
        """The peak-memory estimate (traced with ``trace``, else analytic: of the most thawed
        state the schedule reaches, its entry in ``memory_peak_entry``); None when there is
        none, with the reason in ``memory_error`` when an estimate was attempted and failed."""
        try:
            if self.trace:
                from freezegen.memory.cache import cached_traced

                return cached_traced(self.spec)
            if self.architecture is None:
                return None  # factory or unreadable config: FG111 or --trace covers it
            if self.freeze_plan is None:
                return None
            from freezegen.memory.schedule import schedule_peak

            peak = schedule_peak(self.spec, self.architecture, self.freeze_plan)
            self.memory_peak_entry = peak.entry
            return peak.estimate
        except EstimateError as exc:
            self.memory_error = str(exc)
            return None

    @property
    def gpu(self) -> Gpu | None:
        hw = self.spec.hardware
        return GPUS[hw.gpu] if hw is not None and hw.gpu is not None else None

    @property
    def world_size(self) -> int:
        """Processes a distributed run uses (1 without a strategy or hardware section)."""
        hw = self.spec.hardware
        if self.spec.distributed.strategy == "none" or hw is None:
            return 1
        return hw.world_size
