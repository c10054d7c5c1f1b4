"""A stand-in for Lightning Fabric, so the Fabric fixtures run where ``lightning`` is not
installed (it is no dependency of freezegen).

It models the part of Fabric that the rewritten fixtures' training semantics depend on, for one
process on the CPU:

- ``setup`` makes the model's forward run under ``torch.autocast`` when the precision is
  ``"bf16-mixed"`` and hands its floating outputs back in float32 (as Fabric's
  ``MixedPrecision.convert_output`` does); it returns the same model (its class swapped for a
  subclass with that forward) and optimizers, where Fabric returns wrappers around them (as
  does ``setup_optimizers``);
- ``backward(loss)`` is ``loss.backward()``: no loss scaling, so ``"16-mixed"`` is not
  modelled and raises;
- ``no_backward_sync`` refuses a model that ``setup`` did not see, as Fabric does, and
  otherwise does nothing (one process has no gradient sync to skip);
- ``clip_gradients`` clips the norm or the values of the model's gradients.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
import torch

MODELLED = ("32-true", "bf16-mixed")


class Fabric:
    """Lightning Fabric as one CPU process sees it (see the module docstring)."""

    def __init__(self, *, precision: str = "32-true", **ignored: Any) -> None:
        if precision not in MODELLED:
            raise NotImplementedError(f"the Fabric stand-in models {MODELLED}, not {precision!r}")
        self.precision = precision
        self._set_up: set[int] = set()

    def setup(self, model: torch.nn.Module, *optimizers: torch.optim.Optimizer) -> Any:
        self.setup_module(model)
        return (model, *optimizers) if optimizers else model

    def setup_module(self, model: torch.nn.Module) -> torch.nn.Module:
        autocast = self.autocast

        class SetUp(type(model)):  # type: ignore[misc]
            def forward(self, *args: Any, **kwargs: Any) -> Any:
                with autocast():
                    output = super().forward(*args, **kwargs)
                if isinstance(output, torch.Tensor) and output.is_floating_point():
                    return output.to(torch.get_default_dtype())
                return output

        # a subclass rather than a wrapper keeps the parameter names the test compares, and
        # a copy of the model (copy.deepcopy) keeps the set-up forward, as Fabric's wrapper does
        model.__class__ = SetUp
        self._set_up.add(id(model))
        return model

    def setup_optimizers(self, *optimizers: torch.optim.Optimizer) -> Any:
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def setup_dataloaders(self, *loaders: Any) -> Any:
        return loaders[0] if len(loaders) == 1 else loaders

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16-mixed":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    @contextlib.contextmanager
    def no_backward_sync(self, model: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
        if id(model) not in self._set_up:
            raise TypeError("You need to set up the model first before calling no_backward_sync")
        yield

    def clip_gradients(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        clip_val: float | None = None,
        max_norm: float | None = None,
    ) -> None:
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        if clip_val is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), clip_val)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``lightning``, ``lightning.fabric`` and ``lightning_fabric`` importable with the
    stand-in's Fabric, unless the real lightning is installed."""
    try:
        import lightning  # noqa: F401
    except ImportError:
        pass
    else:
        return
    package = types.ModuleType("lightning")
    fabric = types.ModuleType("lightning.fabric")
    package.Fabric = fabric.Fabric = Fabric  # type: ignore[attr-defined]
    package.fabric = fabric  # type: ignore[attr-defined]
    for name, module in (
        ("lightning", package),
        ("lightning.fabric", fabric),
        ("lightning_fabric", fabric),
    ):
        monkeypatch.setitem(sys.modules, name, module)
