"""The traced estimator: run the real training step on fake tensors and measure it.

The model is built (transformers from the spec's architecture, or the user's factory) inside
``FakeTensorMode``, so every tensor is shape/dtype metadata on a meta storage and nothing is
allocated. Freezing, precision, activation checkpointing, gradient clipping and the optimizer are
applied as the generated script applies them, and two optimizer steps run under a
:class:`~freezegen.memory.tracker.StorageTracker`; the peak of the second (steady-state) step is
the estimate.

Fake CUDA tensors cannot run autograd on a CPU-only build of torch, so the step runs on fake CPU
tensors and the two places where CPU kernels keep different memory than CUDA ones are bridged by
:class:`_CudaBehaviour`: CUDA autocast runs softmax, layer_norm, sum, pow, the losses ... in fp32
(CPU autocast leaves them in the input dtype), and CUDA's flash / memory-efficient attention
apply dropout inside the kernel where CPU falls back to the math path and saves the probabilities.
Plain dropout is bridged too: CPU builds it as ``input * bernoulli(empty_like(input))`` and saves a
noise tensor in the input's dtype, CUDA runs ``native_dropout`` and saves a one-byte bool mask.

The batch a GPU run feeds is token ids with no padding and one sequence per row. Given no
attention mask, transformers looks at the position ids for packed sequences; on real tensors it
finds none and lets sdpa apply causality itself (``is_causal``, no mask tensor), and then passes
grouped-query keys and values at their own size with ``enable_gqa``. On fake tensors that check
cannot read the values, so it assumes packing: every decoder block would get a (b, 1, s, s)
mask, and a mask turns GQA off (``repeat_kv`` copies K/V to all heads).
:func:`_one_sequence_per_row` gives the check the answer a real run gets. Rows packed from
several documents (``data.packing``) are the exception: their position_ids restart, the real
check finds them and every block gets the mask, so the trace leaves the check alone. Eager
attention builds its mask whatever the answer, so it is unaffected.

Which sdpa kernel a CUDA GPU (sm80 and later) then picks decides what it keeps. In fp16/bf16 it
is flash attention: q, k and v at their own (grouped) sizes, the output and a fp32 log-sum-exp,
which is what the CPU flash kernel keeps on fake tensors too (checked with the StorageTracker).
In fp32 flash is unavailable, and torch documents grouped heads as supported by flash and the
math kernel only (the memory-efficient kernel requires equal head counts), so fp32 GQA runs the
math kernel: scaled q, K and V repeated to all heads, the (b, heads, s, s) probabilities and the
output, as eager attention keeps. The CPU picks its flash kernel there, so :class:`_CudaBehaviour`
forces the math kernel for that call (the same composite code on both devices). Without
grouped heads fp32 runs the memory-efficient kernel, which keeps what flash keeps.

A mixture-of-experts block (Mixtral) runs transformers' default ``grouped_mm`` experts code,
whose shapes do not depend on the routing; only the grouped matmul is stood in for, because its
meta kernel accepts bf16 alone (:mod:`freezegen.memory.experts`).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from freezegen.arch import architecture_for
from freezegen.arch.families import family_of
from freezegen.arch.freeze import freeze_rules
from freezegen.memory.estimate import (
    Breakdown,
    EstimateError,
    MemoryEstimate,
    finish,
    refuse_unmodelled,
)
from freezegen.memory.experts import grouped_mm_stand_in
from freezegen.memory.tracker import StorageTracker, rounded
from freezegen.runtime.freezing import select_parameters, set_train_mode, transformer_blocks
from freezegen.spec.models import Spec, adapter_sections
from freezegen.spec.precision import Precision
from freezegen.spec.presets import Architecture

__all__ = ["build_model", "estimate_traced"]

_LOW = (torch.float16, torch.bfloat16)


def estimate_traced(spec: Spec) -> MemoryEstimate:
    """Return the measured per-device peak of the spec's second optimizer step.

    Raises :class:`EstimateError` when the model cannot be built (a factory that raises or returns
    no ``nn.Module``, an unreadable config) or the spec asks for something tracing cannot run.
    """
    refuse_unmodelled(spec)
    from torch._subclasses.fake_tensor import FakeTensorMode

    fsdp = spec.distributed.strategy == "fsdp"
    world = spec.hardware.world_size if spec.hardware else 1
    hf = spec.model.factory is None
    with (
        _quiet_transformers(),
        # Packed rows (data.packing) do get the mask: their position_ids restart.
        _one_sequence_per_row() if hf and not spec.data.packed_rows else contextlib.nullcontext(),
        grouped_mm_stand_in() if hf else contextlib.nullcontext(),
        _fake_process_group(world) if fsdp else contextlib.nullcontext() as mesh,
        FakeTensorMode(allow_non_fake_inputs=False),
        torch.device("cpu"),
    ):
        model, arch = build_model(spec)
        sections = adapter_sections(spec)
        if sections and arch is None:
            raise EstimateError(
                f"{sections} needs a model of a family freezegen knows, to plan which linears "
                "are adapted and quantized; this config's model_type is not one"
            )
        model.train()
        names = _apply_freeze(model, spec, arch)
        adapter_numel = 0
        if arch is not None and sections:
            from freezegen.memory.adapted import adapt

            model = adapt(model, spec, arch)
            adapter_numel = sum(p.numel() for n, p in model.named_parameters() if ".lora_" in n)
            set_train_mode(model)
        if Precision(spec.precision).pure_bf16:
            _to_bf16(model)
        _apply_checkpointing(model, spec)
        if mesh is not None:
            _fully_shard(model, mesh)
        trainable = [p for p in model.parameters() if p.requires_grad]
        if not trainable:
            raise EstimateError("the freeze section leaves no parameter to train")
        tracker = StorageTracker("parameters")
        tracker.track(model.parameters(), "parameters")
        tracker.track(model.buffers(), "parameters")
        optimizer = _optimizer(spec, trainable)
        # FSDP calls these hooks on the sharded parameters once it has reduce-scattered a gradient.
        hooks = [
            p.register_post_accumulate_grad_hook(lambda p: tracker.track([p.grad], "gradients"))
            for p in trainable
        ]
        try:
            with tracker, _fsdp_storage_resizes(tracker) if fsdp else contextlib.nullcontext():
                for step in range(2):
                    if step == 1:
                        tracker.reset_peak()
                    _step(model, optimizer, spec, arch, trainable, tracker)
                    if step == 0:
                        tracker.track(_state_tensors(optimizer), "optimizer_states")
        finally:
            for h in hooks:
                h.remove()
        numel_trainable = sum(p.numel() for p in trainable)
        numel_total = adapter_numel + sum(p.numel() for p in {id(p): p for _, p in names}.values())
        peak = dict(tracker.peak_by_category)
        if spec.distributed.strategy == "ddp":
            # DDP's reducer keeps gradient buckets beside .grad (gradient_as_bucket_view=False).
            peak["gradients"] += _ddp_bucket_bytes(trainable)
    return finish("traced", spec, Breakdown(**peak), numel_trainable, numel_total)


def _ddp_bucket_bytes(trainable: list[torch.Tensor]) -> int:
    return rounded(sum(p.numel() * p.element_size() for p in trainable))


# ---------------------------------------------------------------------------------------------
# FSDP: rank 0 of a fake process group
#
# FSDP2 (``fully_shard``) runs for real in this one process: the fake process group answers every
# collective without communicating (the buffers FSDP allocates for them are what a rank holds),
# the device mesh is built before FakeTensorMode (building it reads the rank list), and the
# model is sharded one unit per transformer block plus the root, resharding after forward, as
# the generated script shards it. Rank 0 holds the largest (padded) shards. FSDP frees and
# re-allocates its unsharded parameters by resizing their storages in place; no operator
# dispatch sees that, so the tracker is told (:func:`_fsdp_storage_resizes`).


@contextlib.contextmanager
def _fake_process_group(world: int) -> Iterator[Any]:
    import torch.distributed as dist

    if not dist.is_available():
        raise EstimateError(
            "the traced FSDP estimate needs torch.distributed, which this build of torch lacks"
        )
    if dist.is_initialized():
        raise EstimateError(
            "the traced FSDP estimate runs its own fake process group and cannot run in a "
            "process that has already initialised torch.distributed"
        )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.testing._internal.distributed.fake_pg import FakeStore  # registers "fake"

    dist.init_process_group("fake", store=FakeStore(), rank=0, world_size=world)
    try:
        yield init_device_mesh("cpu", (world,))
    finally:
        dist.destroy_process_group()


def _fully_shard(model: nn.Module, mesh: Any) -> None:
    from torch.distributed.fsdp import fully_shard

    for block in transformer_blocks(model)[1]:
        fully_shard(block, mesh=mesh, reshard_after_forward=True)
    fully_shard(model, mesh=mesh, reshard_after_forward=True)


@contextlib.contextmanager
def _fsdp_storage_resizes(tracker: StorageTracker) -> Iterator[None]:
    from torch.distributed.fsdp._fully_shard import _fsdp_param, _fsdp_param_group

    alloc, free = _fsdp_param.alloc_storage, _fsdp_param.free_storage

    def alloc_storage(tensor: torch.Tensor) -> None:
        alloc(tensor)
        tracker.resized(tensor)
        tracker.track([tensor], "parameters")  # an unsharded (gathered) parameter

    def free_storage(tensor: torch.Tensor) -> None:
        free(tensor)
        tracker.resized(tensor)

    _fsdp_param.alloc_storage = alloc_storage
    _fsdp_param.free_storage = free_storage
    _fsdp_param_group.alloc_storage = alloc_storage
    try:
        yield
    finally:
        _fsdp_param.alloc_storage = alloc
        _fsdp_param.free_storage = free
        _fsdp_param_group.alloc_storage = alloc


def _local(t: torch.Tensor) -> torch.Tensor:
    """The rank's own part of a (possibly sharded ``DTensor``) tensor."""
    return getattr(t, "_local_tensor", t)


# ---------------------------------------------------------------------------------------------
# Building the model


def build_model(spec: Spec) -> tuple[nn.Module, Architecture | None]:
    """Build the spec's model (call inside ``FakeTensorMode``); return it with its architecture.

    Raises :class:`EstimateError` for a factory that cannot be imported, raises, or returns
    something that is not an ``nn.Module``, and for a config that cannot be read.
    """
    from freezegen.arch import ArchitectureError, UnknownArchitecture

    if spec.model.factory is not None:
        return _from_factory(spec.model.factory), None
    try:
        arch = architecture_for(spec.model)
    except UnknownArchitecture:
        arch = None  # transformers builds it; freezing goes by module-name heuristics
    except ArchitectureError as exc:
        raise EstimateError(str(exc)) from None
    return _from_hf_config(spec), arch


def _from_factory(path: str) -> nn.Module:
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise EstimateError(f"cannot import model factory {path!r}: {exc}") from None
    if not callable(target):
        raise EstimateError(f"model factory {path!r} is not callable")
    try:
        model = target()
    except Exception as exc:  # the user's code: any failure is reported, not re-raised
        raise EstimateError(f"model factory {path!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise EstimateError(
            f"model factory {path!r} returned {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def _from_hf_config(spec: Spec) -> nn.Module:
    """The transformers model the generated script builds (same config, see arch.hf)."""
    import transformers

    from freezegen.arch import ArchitectureError
    from freezegen.arch.hf import hf_model

    try:
        hf = hf_model(spec.model)
    except ArchitectureError as exc:
        raise EstimateError(str(exc)) from None
    cls = (
        transformers.AutoModelForSequenceClassification
        if spec.model.head == "sequence-classification"
        else transformers.AutoModelForCausalLM
    )
    try:
        config = transformers.AutoConfig.for_model(hf.model_type, **hf.config)
        return cls.from_config(config, attn_implementation=spec.model.attention)
    except ValueError as exc:  # a model_type or head this transformers cannot build
        raise EstimateError(f"transformers cannot build this model: {exc}") from None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    import warnings

    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)


@contextlib.contextmanager
def _one_sequence_per_row() -> Iterator[None]:
    """Make transformers' packed-sequence check answer "none" (see the module docstring)."""
    from transformers import masking_utils

    check = masking_utils.find_packed_sequence_indices
    masking_utils.find_packed_sequence_indices = lambda position_ids: None
    try:
        yield
    finally:
        masking_utils.find_packed_sequence_indices = check


# ---------------------------------------------------------------------------------------------
# Freezing and checkpointing


def _apply_freeze(
    model: nn.Module, spec: Spec, arch: Architecture | None
) -> list[tuple[str, nn.Parameter]]:
    """Freeze what the generated script freezes, by the same code (freezegen.runtime.freezing):
    a known family's module names per kind, or the name heuristics for any other model."""
    named = list(model.named_parameters())
    kinds = None
    if arch is not None:
        family = family_of(arch)
        table = family.parameter_table(arch, spec.model.head, spec.model.num_labels or 2)
        missing = {p.name for p in table} - {name for name, _ in named}
        if missing:
            raise EstimateError(
                f"internal: parameter table names {sorted(missing)[:3]} that the "
                "built model does not have"
            )
        kinds = {kind: list(names) for kind, names in family.modules.items()}
    depth = len(transformer_blocks(model)[1])
    frozen = select_parameters(model, freeze_rules(spec.freeze, depth), kinds)
    for name, p in named:
        if name in frozen:
            p.requires_grad_(False)
    # As in the generated script, dropout and batch norm of fully frozen blocks stay in eval():
    # they draw no masks. The blocks themselves stay in training mode (checkpointing looks at it).
    set_train_mode(model)
    return named


def _to_bf16(model: nn.Module) -> None:
    """``model.to(torch.bfloat16)``: ``Module.to`` swaps fake parameters, which fails (they
    carry weakrefs), so the floating parameters and buffers are converted in place."""
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            t.data = t.data.to(torch.bfloat16)


def _apply_checkpointing(model: nn.Module, spec: Spec) -> None:
    if spec.checkpointing is None:
        return
    blocks = transformer_blocks(model)[1]
    chosen = spec.checkpointing.indices(len(blocks))
    reentrant = spec.checkpointing.reentrant
    for index, block in enumerate(blocks):
        if index in chosen:
            _checkpoint_block(block, reentrant)


def _checkpoint_block(block: nn.Module, reentrant: bool) -> None:
    # Wrap forward directly so it works for any block (HF layers and factory models alike),
    # exactly as torch.utils.checkpoint would be applied by the generated script.
    from torch.utils.checkpoint import checkpoint

    inner = block.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if not (block.training and torch.is_grad_enabled()):
            return inner(*args, **kwargs)
        # The recomputation runs inside backward, outside the step's _CudaBehaviour: re-enter
        # it there so the recomputed block matches its forward (dropout masks, fp32 ops).
        behaviour = _CudaBehaviour.current

        def run(*a: Any, **k: Any) -> Any:
            if behaviour is None or _CudaBehaviour.current is not None:
                return inner(*a, **k)
            with _CudaBehaviour(behaviour.autocast):
                return inner(*a, **k)

        return checkpoint(run, *args, use_reentrant=reentrant, **kwargs)

    block.forward = forward  # type: ignore[method-assign]


# ---------------------------------------------------------------------------------------------
# The step


def _optimizer(spec: Spec, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    o = spec.optimizer
    impl = {"foreach": {"foreach": True}, "fused": {"fused": True}, "loop": {"foreach": False}}[
        o.implementation
    ]
    if o.name == "sgd":
        return torch.optim.SGD(
            params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, **impl
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, **impl)


def _state_tensors(optimizer: torch.optim.Optimizer) -> Iterator[torch.Tensor]:
    for state in optimizer.state.values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                yield value


def _step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    spec: Spec,
    arch: Architecture | None,
    trainable: list[torch.Tensor],
    tracker: StorageTracker,
) -> None:
    b, s = spec.batch.micro_batch_size, spec.batch.seq_len
    vocab = arch.vocab_size if arch else 2
    precision = Precision(spec.precision)
    low = getattr(torch, precision.autocast_dtype) if precision.autocast_dtype else None
    scale = torch.full((), 65536.0) if precision.scaler else None
    # Micro-steps after the first all look alike (gradients already exist), so two cover the window.
    for _ in range(min(spec.batch.grad_accum_steps, 2)):
        tracker.category = "activations"
        ids = torch.ones(b, s, dtype=torch.long)
        autocast = torch.autocast("cpu", dtype=low) if low is not None else contextlib.nullcontext()
        with autocast, _CudaBehaviour(low is not None):
            loss = _loss(model, ids, spec, arch, vocab)
        if spec.batch.grad_accum_steps > 1:
            loss = loss / spec.batch.grad_accum_steps
        if scale is not None:
            loss = loss * scale
        tracker.category = "temporaries"
        loss.backward()
        del loss
    grads = [_local(p.grad) for p in trainable if p.grad is not None]
    if scale is not None:
        found_inf = torch.zeros(1)
        torch._amp_foreach_non_finite_check_and_unscale_(grads, found_inf, scale.reciprocal())
    if spec.train.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(
            trainable, spec.train.grad_clip, foreach=spec.optimizer.implementation != "loop"
        )
    del grads
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _loss(
    model: nn.Module, ids: torch.Tensor, spec: Spec, arch: Architecture | None, vocab: int
) -> torch.Tensor:
    if spec.model.factory is None:
        if spec.model.head == "sequence-classification":
            labels = torch.zeros(ids.shape[0], dtype=torch.long)
        else:
            labels = ids
        # A peft model passes keyword arguments on to the model it wraps.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        extra = {"use_cache": False} if _accepts(base, "use_cache") else {}
        return model(input_ids=ids, labels=labels, **extra).loss
    out = model(ids)
    loss = getattr(out, "loss", None)
    if isinstance(loss, torch.Tensor):
        return loss
    if isinstance(out, torch.Tensor) and out.dim() == 0:
        return out
    if isinstance(out, torch.Tensor) and out.dim() >= 2:
        # Logits: next-token cross entropy in fp32, as language-model heads compute it.
        return F.cross_entropy(
            out.float().flatten(0, -2), torch.zeros(out.shape[:-1].numel(), dtype=torch.long)
        )
    raise EstimateError(
        "the factory model's forward(input_ids) must return a loss, an object "
        f"with .loss, or logits; it returned {type(out).__name__}"
    )


def _accepts(model: nn.Module, name: str) -> bool:
    import inspect

    return name in inspect.signature(model.forward).parameters


# ---------------------------------------------------------------------------------------------
# CUDA kernel behaviour on fake CPU tensors

_FP32 = {
    F.layer_norm,
    F.group_norm,
    F.nll_loss,
    F.cross_entropy,
    F.mse_loss,
    F.l1_loss,
    F.smooth_l1_loss,
    F.binary_cross_entropy_with_logits,
    F.kl_div,
    F.softplus,
    torch.layer_norm,
    torch.rsqrt,
    torch.Tensor.rsqrt,
    torch.pow,
    torch.Tensor.pow,
    torch.Tensor.__pow__,
    torch.exp,
    torch.Tensor.exp,
    torch.log,
    torch.Tensor.log,
    torch.logsumexp,
    torch.Tensor.logsumexp,
    torch.reciprocal,
    torch.Tensor.reciprocal,
}
_FP32_OUT = {
    F.softmax,
    F.log_softmax,
    torch.softmax,
    torch.log_softmax,
    torch.Tensor.softmax,
    torch.Tensor.log_softmax,
    torch.sum,
    torch.Tensor.sum,
    torch.cumsum,
    torch.Tensor.cumsum,
    torch.prod,
    torch.Tensor.prod,
}


class _CudaBehaviour(TorchFunctionMode):
    """Make fake CPU kernels keep what CUDA kernels keep (see the module docstring)."""

    current: _CudaBehaviour | None = None  # the active one, for checkpoint recomputation

    def __init__(self, autocast: bool) -> None:
        super().__init__()
        self.autocast = autocast

    def __enter__(self) -> _CudaBehaviour:
        self._outer = _CudaBehaviour.current
        _CudaBehaviour.current = self
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        _CudaBehaviour.current = self._outer
        super().__exit__(*exc)

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is F.scaled_dot_product_attention:
            return self._sdpa(*args, **kwargs)
        if func is F.dropout:
            return _cuda_dropout(*args, **kwargs)
        if self.autocast and torch.is_autocast_enabled("cpu"):
            if func in _FP32:
                args = tuple(_to_fp32(a) for a in args)
                kwargs = {k: _to_fp32(v) for k, v in kwargs.items()}
            elif (
                func in _FP32_OUT
                and args
                and isinstance(args[0], torch.Tensor)
                and args[0].dtype in _LOW
                and kwargs.get("dtype") is None
            ):
                args = (args[0].float(), *args[1:])
        return func(*args, **kwargs)

    def _sdpa(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        dropout_p: float = 0.0,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        """sdpa as CUDA picks its kernel (see the module docstring)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel

        grouped = kwargs.get("enable_gqa", False) and query.shape[-3] != key.shape[-3]
        low = query.dtype in _LOW or (self.autocast and torch.is_autocast_enabled("cpu"))
        if grouped and not low:
            # (Attention dropout here would save a fp32 noise tensor where CUDA's math kernel
            # keeps a bool mask; the llama-style families default to none.)
            with sdpa_kernel(SDPBackend.MATH):
                return F.scaled_dot_product_attention(
                    query, key, value, attn_mask, dropout_p, *args, **kwargs
                )
        # Flash / memory-efficient attention drop inside the kernel and keep only a seed.
        return F.scaled_dot_product_attention(query, key, value, attn_mask, 0.0, *args, **kwargs)


def _cuda_dropout(
    input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> torch.Tensor:
    """``F.dropout`` as CUDA runs it: ``native_dropout``, which saves a bool mask."""
    if not training or p == 0.0:
        return input
    if p == 1.0 or inplace:
        return F.dropout(input, p, training, inplace)
    return torch.native_dropout(input, p, True)[0]


def _to_fp32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dtype in _LOW:
        return value.float()
    return value
