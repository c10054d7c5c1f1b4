import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from freezegen.memory.tracker import StorageTracker, rounded


def test_rounding_matches_the_caching_allocator():
    assert rounded(0) == 0
    assert rounded(1) == 512
    assert rounded(512) == 512
    assert rounded(513) == 1024


def test_counts_new_storages_once_and_frees_them():
    with FakeTensorMode(), StorageTracker("activations") as tracker:
        a = torch.empty(1000)  # 4000 bytes -> 4096
        view = a.view(10, 100)
        assert tracker.current == 4096
        del a
        assert tracker.current == 4096  # the view keeps the storage alive
        del view
        assert tracker.current == 0
        assert tracker.peak == 4096


def test_peak_window_and_categories():
    with FakeTensorMode():
        w = torch.empty(256, requires_grad=True)
        tracker = StorageTracker("temporaries")
        tracker.track([w], "parameters")
        with tracker:
            tracker.reset_peak()
            x = torch.empty(256) * 2
            tracker.track([x], "gradients")
            assert tracker.by_category["gradients"] == 1024
            assert tracker.by_category["temporaries"] == 0
            del x
        assert tracker.by_category["parameters"] == 1024
        # the empty() operand and the product are both alive during the multiplication
        assert tracker.peak == 3 * 1024
        assert tracker.peak_by_category["temporaries"] == 2 * 1024


def test_frozen_parameters_and_backward_on_real_tensors():
    lin = torch.nn.Linear(64, 64)
    lin.weight.requires_grad_(False)
    x = torch.randn(8, 64)
    with StorageTracker("activations") as tracker:
        lin(x).sum().backward()
    # Only the bias gets a gradient; the frozen weight needs none (no grad hook was needed on
    # it, unlike torch's MemTracker).
    assert lin.weight.grad is None
    assert lin.bias.grad is not None
    # The (8, 64) fp32 output was counted while it lived, and the bias gradient created during
    # backward is a storage the tracker knows and can re-book as a gradient.
    assert tracker.peak >= 8 * 64 * 4
    tracker.track([lin.bias.grad], "gradients")
    assert tracker.by_category["gradients"] == 512


def test_in_place_storage_resizes_are_rebooked():
    # FSDP frees and re-allocates unsharded parameters with untyped_storage().resize_().
    with FakeTensorMode(), StorageTracker("parameters") as tracker:
        a = torch.empty(1000)
        nbytes = a.untyped_storage().nbytes()
        a.untyped_storage().resize_(0)
        tracker.resized(a)
        assert tracker.current == 0
        a.untyped_storage().resize_(nbytes)
        tracker.resized(a)
        assert tracker.current == 4096
        assert tracker.peak == 4096
        del a
        assert tracker.current == 0
