"""A storage-level memory tracker for fake-tensor training steps.

:class:`StorageTracker` is a ``TorchDispatchMode``: every tensor an operator returns is looked up
by its untyped storage, and a storage seen for the first time is counted at its size rounded up
to 512 bytes (the CUDA caching allocator's granularity, what ``max_memory_allocated`` reports).
A weakref finalizer on the storage takes it off when the last tensor using it dies, so the live
total follows Python and autograd lifetimes exactly. Views and in-place results share a storage
and cost nothing.

Unlike ``torch.distributed._tools.mem_tracker.MemTracker`` it installs no hooks on parameters, so
frozen parameters (which have no grad accumulator) are fine. It works under ``FakeTensorMode``
(storages are meta storages, nothing is allocated) and equally on real tensors. Wrapper tensor
subclasses (FSDP's ``DTensor`` parameters, gradients and optimizer states) are counted by the
storages of the local tensors they wrap. A storage resized in place (FSDP frees and re-allocates
its unsharded parameters with ``untyped_storage().resize_``, which no operator dispatch sees) is
re-booked with :meth:`resized`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode, is_traceable_wrapper_subclass
from torch.utils._pytree import tree_leaves

BLOCK = 512
CATEGORIES = ("parameters", "gradients", "optimizer_states", "activations", "temporaries")


def rounded(nbytes: int) -> int:
    """Return ``nbytes`` as the CUDA caching allocator books it (0 bytes: no allocation)."""
    return 0 if nbytes == 0 else -(-nbytes // BLOCK) * BLOCK


class StorageTracker(TorchDispatchMode):
    """Count live storage bytes, per category, and the peak since the last :meth:`reset_peak`.

    New storages created by operators go to :attr:`category` (set it as the step moves from
    forward to backward to the optimizer); :meth:`track` registers tensors that already exist or
    moves a storage to another category (a gradient, an optimizer state).
    """

    def __init__(self, category: str = "temporaries") -> None:
        super().__init__()
        self.category = category
        self._live: dict[int, list[Any]] = {}  # key -> [bytes, category]
        self.current = 0
        self.by_category = dict.fromkeys(CATEGORIES, 0)
        self.peak = 0
        self.peak_by_category = dict(self.by_category)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._add(leaf, self.category, relabel=False)
        return out

    def track(self, tensors: Iterable[torch.Tensor | None], category: str) -> None:
        """Count ``tensors`` under ``category`` (registering any storage not yet seen)."""
        for t in tensors:
            if t is not None:
                self._add(t, category, relabel=True)

    def resized(self, tensor: torch.Tensor) -> None:
        """Re-book ``tensor``'s storage at its current size, after an in-place storage resize."""
        storage = tensor.untyped_storage()
        entry = self._live.get(storage._cdata)
        if entry is None:
            self._add(tensor, self.category, relabel=False)
            return
        size = rounded(storage.nbytes())
        self.current += size - entry[0]
        self.by_category[entry[1]] += size - entry[0]
        entry[0] = size
        self._note_peak()

    def reset_peak(self) -> None:
        """Start a new peak window at the current live total."""
        self.peak = self.current
        self.peak_by_category = dict(self.by_category)

    def _add(self, tensor: torch.Tensor, category: str, relabel: bool) -> None:
        if is_traceable_wrapper_subclass(tensor):
            names, _ = tensor.__tensor_flatten__()
            for name in names:
                inner = getattr(tensor, name)
                if isinstance(inner, torch.Tensor):  # DTensor also names its device mesh
                    self._add(inner, category, relabel)
            return
        try:
            storage = tensor.untyped_storage()
        except (NotImplementedError, RuntimeError):
            return  # sparse or otherwise storage-less tensors: nothing the allocator sees
        key = storage._cdata
        entry = self._live.get(key)
        if entry is not None:
            if relabel and entry[1] != category:
                self.by_category[entry[1]] -= entry[0]
                self.by_category[category] += entry[0]
                entry[1] = category
            return
        size = rounded(storage.nbytes())
        self._live[key] = [size, category]
        weakref.finalize(storage, self._free, key)
        self.current += size
        self.by_category[category] += size
        self._note_peak()

    def _note_peak(self) -> None:
        if self.current > self.peak:
            self.peak = self.current
            self.peak_by_category = dict(self.by_category)

    def _free(self, key: int) -> None:
        entry = self._live.pop(key, None)
        if entry is not None:
            self.current -= entry[0]
            self.by_category[entry[1]] -= entry[0]
