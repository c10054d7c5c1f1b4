"""What every rule may ask about the file being checked; built once per parsed file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from freezegen.check.loops import Event, walk_loop
from freezegen.check.names import SCALERS, Names, collect_names, dotted
from freezegen.diagnostics import Severity

Fix = Callable[[cst.CSTNode], cst.CSTNode]
"""Takes the node as it stands after inner fixes and returns its replacement."""

OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "Adagrad",
    "Adadelta",
    "RMSprop",
    "Rprop",
    "NAdam",
    "RAdam",
    "ASGD",
    "LBFGS",
    "SparseAdam",
    "Adafactor",
    "Lion",
    "AdamW8bit",
    "Adam8bit",
    "PagedAdamW",
    "PagedAdamW8bit",
    "PagedAdam",
    "PagedAdam8bit",
    "PagedLion",
    "Lion8bit",
    "AdamWScheduleFree",
    "SGDScheduleFree",
    "RAdamScheduleFree",
    "DummyOptim",
    "ZeroRedundancyOptimizer",
)


@dataclass(frozen=True, eq=False)
class Finding:
    """A rule's finding before it is located: the node, and optionally how to fix it."""

    code: str
    severity: Severity
    node: cst.CSTNode
    message: str
    help: str | None = None
    fix: Fix | None = None
    safe: bool = True
    """False when the fix can change what the code does (``--unsafe-fixes`` applies it)."""


class LoopFacts:
    """The events of one loop body and what they say about gradient accumulation."""

    def __init__(self, events: list[Event], steps: list[Event]) -> None:
        self.events = events
        self.steps = steps
        """Optimizer steps (``optimizer.step()``, ``scaler.step(optimizer)``), nested ones too."""
        own = [e for e in steps if not e.nested]
        self.guards = {e.guard for e in own if e.guard is not None}
        """The ``if ... % ...`` statements around this loop's own optimizer steps."""
        self.accumulates = bool(own) and all(e.guard is not None for e in own)
        """True when every optimizer step of this loop runs only on window boundaries."""


class Roles(ABC):
    """Which receivers are optimizers, schedulers and GradScalers: read from the file's
    constructor assignments (``scaler = GradScaler()``) and, failing that, from the receiver's
    name (``self.lr_sched``). One home for the libcst rules (:class:`FileContext`) and the
    ``ast`` pre-pass (:mod:`freezegen.check.outline`), which must agree exactly."""

    @abstractmethod
    def constructed_callees(self) -> Iterable[tuple[str, str]]:
        """(target, callee as qualified or written) for every ``target = callee(...)``."""

    def _targets(self, match: Callable[[str], bool]) -> set[str]:
        return {target for target, callee in self.constructed_callees() if match(callee)}

    @cached_property
    def scaler_names(self) -> set[str]:
        return self._targets(lambda callee: callee.rsplit(".", 1)[-1] in SCALERS)

    @cached_property
    def optimizer_names(self) -> set[str]:
        return self._targets(lambda callee: callee.rsplit(".", 1)[-1] in OPTIMIZERS)

    @cached_property
    def scheduler_names(self) -> set[str]:
        return self._targets(
            lambda callee: (
                # AdamWScheduleFree is an optimizer, not a schedule
                callee.rsplit(".", 1)[-1] not in OPTIMIZERS
                and (
                    callee.startswith("torch.optim.lr_scheduler.")
                    or "schedule" in callee.rsplit(".", 1)[-1].lower()
                )
            )
        )

    def role(self, receiver: str) -> str | None:
        """``scaler``, ``scheduler``, ``optimizer`` or None for a dotted receiver name."""
        last = receiver.rsplit(".", 1)[-1].lower()
        if receiver in self.scaler_names or "scaler" in last:
            return "scaler"
        if receiver in self.scheduler_names or "sched" in last:
            return "scheduler"
        if (
            receiver in self.optimizer_names
            or "optim" in last
            or last in ("opt", "optimiser")
            or last.startswith("opt_")
        ):
            return "optimizer"
        return None


class FileContext(Roles):
    """One parsed file: its names, its loops (analysed on demand) and the findings so far."""

    def __init__(self, path: str, module: cst.Module, text: str) -> None:
        self.path = path
        self.module = module
        self.text = text
        self.names: Names = collect_names(module)
        self.findings: list[Finding] = []
        self._loops: dict[int, LoopFacts] = {}

    def constructed_callees(self) -> Iterable[tuple[str, str]]:
        return ((t, self.names.callee(dotted(call.func))) for t, call in self.names.constructed)

    def loop(self, node: cst.For | cst.While) -> LoopFacts:
        """The (cached) facts of one loop body."""
        facts = self._loops.get(id(node))
        if facts is None:
            events = walk_loop(node)
            steps = [
                e
                for e in events
                if e.is_call
                and e.method == "step"
                and self.role(e.receiver) in ("optimizer", "scaler")
            ]
            facts = self._loops[id(node)] = LoopFacts(events, steps)
        return facts
