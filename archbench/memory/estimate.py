"""Predicted memory of a network: parameters, gradients, optimizer state, saved activations and peaks.

Nothing is computed: the network runs on the meta device (shapes and dtypes only, no data), and a
``TorchDispatchMode`` follows every tensor storage from the op that creates it to the moment its last
reference goes (a weak reference on the storage fires then). So the predicted live bytes are those of the
same Python code, the same autograd graph and the same optimizer, on tensors that hold no data.

What is counted, in bytes (each storage once, whatever views share it):

- ``params``, ``buffers``: the network's parameters and buffers (BatchNorm running statistics...).
- ``grads``: the ``.grad`` of every parameter that requires one, after one backward pass.
- ``optimizer_state``: every tensor in ``optimizer.state`` after a step: SGD with momentum keeps one
  buffer per parameter; Adam keeps ``exp_avg`` and ``exp_avg_sq`` plus one 0-dim float32 ``step`` tensor
  per parameter (on the CPU, also for CUDA parameters, unless ``capturable``/``fused``).
- ``inputs``: the input batch and the class targets of the loss.
- ``activations``: the tensors autograd saves for backward in one training forward (``saved_tensors_hooks``),
  parameters and buffers excluded (BatchNorm saves its running statistics too), the input batch included
  when a layer saves it; the loss's own saved tensors are not in it.
- ``peak_train``: the most bytes live at any moment of one steady-state training step (optimizer state
  already there, gradients set to ``None`` before it): forward, loss, backward, optimizer step; parameters,
  buffers, optimizer state and inputs included.
- ``peak_inference``: the same for one ``torch.no_grad()`` forward in eval mode.

Inside an operator: on the CPU, the blocked copies oneDNN's convolutions make and free inside the kernel are
added where they happen (:mod:`archbench.memory.kernels`); ``peak_train_between_ops`` and
``peak_inference_between_ops`` leave them out (the live tensors alone). What is still not seen (other
operators' temporaries, cuDNN workspaces, the allocator's rounding and caching, the CUDA context) is
named in each estimate's ``not_predicted``; :func:`archbench.measure_memory` measures the real step.

The training loss follows the network's output (``CrossEntropyLoss`` for logits, ``NLLLoss`` for
log-probabilities) against class 0 targets; a network whose output has no class dimension is trained on
``output.sum()``.

Example:
    >>> m = estimate_memory("lenet5", (2, 1, 28, 28), optimizer="adam")
    >>> m.params, m.grads, m.optimizer_state == 2 * m.params + 4 * 10
    (246824, 246824, True)
    >>> m.peak_train > m.params + m.grads + m.optimizer_state + m.activations
    True
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from archbench.analysis.trace import first_tensor
from archbench.errors import ArchbenchError, ShapeError
from archbench.memory.kernels import KernelMemory
from archbench.registry import loss_for

Shape = tuple[int, ...]

#: The optimizers a training step can use, as ``archbench memory --optimizer`` names them.
OPTIMIZERS: tuple[str, ...] = ("sgd", "momentum", "adam")
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


@dataclass(frozen=True)
class LayerMemory:
    """One module call of the training forward.

    Attributes:
        name: dotted path in the model (``""`` for the model itself).
        type: the module's class name.
        output_bytes: bytes of the tensors it returns (numel × itemsize, whether or not they are views).
        saved_bytes: bytes of storages autograd saved for backward while this module was the innermost one
            running (functional ops in a parent's ``forward`` count for the parent); these add up to
            :attr:`MemoryEstimate.activations`.
    """

    name: str
    type: str
    output_bytes: int
    saved_bytes: int


@dataclass(frozen=True)
class MemoryEstimate:
    """Predicted bytes of one training step and one inference forward (see the module docstring).

    ``peak_train_between_ops`` and ``peak_inference_between_ops`` are the peaks of the live tensors alone,
    without what kernels hold inside (:mod:`archbench.memory.kernels`); :attr:`not_predicted` says what the
    peaks leave out. Compare with :func:`archbench.measure_memory`.
    """

    input_shape: Shape
    optimizer: str
    dtype: str
    params: int
    buffers: int
    grads: int
    optimizer_state: int
    inputs: int
    activations: int
    peak_train: int
    peak_train_phase: str
    peak_inference: int
    peak_train_between_ops: int
    peak_inference_between_ops: int
    layers: tuple[LayerMemory, ...]
    not_predicted: str


# ---------------------------------------------------------------------------------------- shared helpers
def format_bytes(nbytes: int) -> str:
    """Bytes in binary units with three significant digits.

    Example:
        >>> format_bytes(512), format_bytes(246824), format_bytes(44713512)
        ('512 B', '241 KiB', '42.6 MiB')
    """
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def check_optimizer(name: str) -> str:
    """``name`` if it is one of :data:`OPTIMIZERS`.

    Raises:
        ArchbenchError: for any other name.
    """
    if name not in OPTIMIZERS:
        raise ArchbenchError(f"Unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}.")
    return name


def make_optimizer(name: str, params: Sequence[torch.Tensor], *, foreach: bool | None = None) -> torch.optim.Optimizer:
    """The optimizer a training step uses: plain SGD, SGD with momentum 0.9, or Adam (torch defaults)."""
    check_optimizer(name)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, foreach=foreach)
    return torch.optim.SGD(params, lr=1e-2, momentum=0.9 if name == "momentum" else 0.0, foreach=foreach)


def resolve_dtype(dtype: str | torch.dtype | None, model: nn.Module) -> torch.dtype:
    """``dtype`` as a floating torch dtype; ``None`` means the model's own (its first floating parameter).

    Raises:
        ArchbenchError: for anything but float32, float16, bfloat16 or float64.
    """
    if dtype is None:
        return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    raise ArchbenchError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")


def training_loss(output: object, kind: str = "logits") -> torch.Tensor:
    """The loss of one training step for ``output``, against class 0 targets made here.

    ``kind`` is the registry's output kind: ``"log_probs"`` trains with ``NLLLoss``, anything else with
    ``CrossEntropyLoss`` (over dimension 1, targets shaped like the output without it). A first output
    tensor with fewer than two dimensions is trained on its sum.
    """
    out = first_tensor(output)
    if out is None:
        raise ArchbenchError("The network returned no tensor, so there is nothing to train; return the logits.")
    if out.dim() < 2 or not out.is_floating_point():
        return out.float().sum()
    target = torch.zeros((out.shape[0], *out.shape[2:]), dtype=torch.long, device=out.device)
    return loss_for(kind)(out, target)


def _target_bytes(output: object) -> int:
    """Bytes of the targets :func:`training_loss` makes for ``output``."""
    out = first_tensor(output)
    if out is None or out.dim() < 2 or not out.is_floating_point():
        return 0
    return out[:, 0].numel() * torch.empty((), dtype=torch.long).element_size()


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and repeats counted once).

    Example:
        >>> x = torch.zeros(10)
        >>> storage_bytes([x, x[2:], x.view(2, 5), torch.zeros(3, dtype=torch.float64)])
        64
    """
    seen: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        seen[storage._cdata] = storage.nbytes()
    return sum(seen.values())


def optimizer_tensors(optimizer: torch.optim.Optimizer | None) -> list[torch.Tensor]:
    """Every tensor the optimizer keeps in its state (momentum buffers, moments, step counters)."""
    if optimizer is None:
        return []
    return [v for state in optimizer.state.values() for v in tree_leaves(state) if isinstance(v, torch.Tensor)]


@contextlib.contextmanager
def kept_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Restore every submodule's train/eval flag on exit, whatever happens inside."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def resolve_for_memory(model_or_ref: object, input_shape: Sequence[int] | None, *,
                       meta: bool = False) -> tuple[nn.Module, Shape, str, str | None]:  # fmt: skip
    """The module, the checked input shape, the loss kind and the registered name (or ``None``).

    ``model_or_ref`` is a module, a reference string or an already resolved
    :class:`~archbench.refs.ResolvedModel`; the shape defaults to a registered network's input at batch 1.
    With ``meta``, a reference string is built on the meta device (no weights initialised) where its builder
    allows it.
    """
    from archbench.analysis.summary import resolve_model
    from archbench.refs import ResolvedModel, resolve_ref

    if isinstance(model_or_ref, ResolvedModel):
        ref = model_or_ref
    else:
        try:
            with torch.device("meta") if meta and isinstance(model_or_ref, str) else contextlib.nullcontext():
                ref = resolve_ref(model_or_ref)
        except Exception:  # noqa: BLE001 - a builder that needs real tensors: build it as usual (or fail as usual)
            ref = resolve_ref(model_or_ref)
    model, shape = resolve_model(ref.module, input_shape or ref.input_shape())
    spec = ref.spec
    return model, shape, getattr(spec, "output", "logits"), spec.name if spec is not None else None


# ------------------------------------------------------------------------------------------- live bytes
def _stats_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):  # noqa: ANN001, ANN202, A002
    # CPU's batch_norm: output like the input; saved mean and 1/std of C values in training, empty in eval.
    stats = input.shape[1] if training else 0
    dtype = _stats_dtype(input)
    return torch.empty_like(input), input.new_empty((stats,), dtype=dtype), input.new_empty((stats,), dtype=dtype)


def _batch_norm_backward(grad_out, input, weight, running_mean, running_var, save_mean, save_invstd, train, eps,  # noqa: ANN001, ANN202, A002
                         output_mask):  # fmt: skip
    dtype = weight.dtype if weight is not None else _stats_dtype(input)
    return (
        torch.empty_like(input) if output_mask[0] else None,
        input.new_empty((input.shape[1],), dtype=dtype) if output_mask[1] else None,
        input.new_empty((input.shape[1],), dtype=dtype) if output_mask[2] else None,
    )


#: Shape rules for meta tensors where torch's own meta kernel is a slow Python decomposition (BatchNorm's
#: take milliseconds a call): the same outputs (shapes, dtypes, layout) as the CPU kernel, made directly.
_FAST_META = {
    torch.ops.aten.native_batch_norm.default: _batch_norm,
    torch.ops.aten.native_batch_norm_backward.default: _batch_norm_backward,
}


class _LiveStorages(TorchDispatchMode):
    """Follows the bytes of every storage an op creates until its last reference goes.

    ``add`` registers a storage (already there, or just created); a weak reference on the storage object
    (kept alive by PyTorch for as long as the storage itself lives) subtracts it again when it dies.
    """

    def __init__(self, kernels: KernelMemory | None = None) -> None:
        super().__init__()
        self._refs: dict[int, tuple[int, weakref.ref]] = {}
        self._kernels = kernels
        self.live = 0
        self.peak = 0  # kernels' inside memory included
        self.between = 0  # live tensors only: the most bytes live between operators
        self.phase = ""
        self.peak_phase = ""

    def _reach(self, level: int) -> None:
        if level > self.peak:
            self.peak, self.peak_phase = level, self.phase

    def add(self, tensor: torch.Tensor) -> None:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse, nested...: no plain storage to follow
            return
        key = storage._cdata
        if key in self._refs:
            return
        nbytes = storage.nbytes()
        self._refs[key] = (nbytes, weakref.ref(storage, lambda _ref, key=key: self._free(key)))
        self.live += nbytes
        self.between = max(self.between, self.live)
        self._reach(self.live)

    def _free(self, key: int) -> None:
        entry = self._refs.pop(key, None)
        if entry is not None:
            self.live -= entry[0]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's protocol
        rule = _FAST_META.get(func)
        if rule is not None and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            out = rule(*args, **(kwargs or {}))
        else:
            out = func(*args, **(kwargs or {}))
        if self._kernels is not None:
            self._reach(self.live + self._kernels.inside_peak(func, args, kwargs, out))
        for value in tree_leaves(out):
            if isinstance(value, torch.Tensor):
                self.add(value)
        return out


class _LayerRecorder:
    """Module hooks that log each call's output bytes and attribute saved tensors to the innermost module."""

    def __init__(self, model: nn.Module, excluded: set[int]) -> None:
        self.rows: list[list] = []  # [name, type, output_bytes, saved_bytes]
        self._open: list[int] = []
        self._excluded = excluded  # storage keys never counted (parameters and buffers)
        self._saved: set[int] = set()
        self.saved_total = 0
        self.counting = True  # off once the model's forward is done (the loss's saved tensors are not counted)
        self._handles = []
        for name, module in model.named_modules():
            self._handles.append(module.register_forward_pre_hook(self._pre(name, type(module).__name__)))
            self._handles.append(module.register_forward_hook(self._post))

    def _pre(self, name: str, kind: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: tuple) -> None:
            self.rows.append([name, kind, 0, 0])
            self._open.append(len(self.rows) - 1)

        return hook

    def _post(self, _module: nn.Module, _args: tuple, output: object) -> None:
        tensors = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
        self.rows[self._open.pop()][2] = sum(t.numel() * t.element_size() for t in tensors)

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if self.counting and key not in self._excluded and key not in self._saved:
            self._saved.add(key)
            self.saved_total += storage.nbytes()
            if self._open:
                self.rows[self._open[-1]][3] += storage.nbytes()
        return tensor.detach()  # not the tensor itself: a saved output would otherwise keep its own graph alive

    @staticmethod
    def unpack(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def __enter__(self) -> _LayerRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------- estimate
def _meta_like(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty_like(tensor, device="meta", dtype=dtype if tensor.is_floating_point() else tensor.dtype)


def _fit_error(model: nn.Module, shape: Shape, name: str | None, err: Exception) -> ArchbenchError:
    """One sentence for a network that does not take ``shape``: the first misfit layer if the checks find it."""
    from archbench.analysis.checks import check_resolved

    if isinstance(err, ArchbenchError):  # the network's own one-sentence refusal (e.g. our BatchNorm at batch 1)
        return err
    check = check_resolved(model, shape, name)
    if not check.ok:
        return ShapeError(check.message)
    text = " ".join(str(err).split())[:200]
    return ShapeError(f"The network does not run on input {shape} ({type(err).__name__}: {text}); check the input size.")


def shape_fits(model: nn.Module, shape: Shape, name: str | None = None) -> None:
    """Check on the meta device (no arithmetic) that ``model`` takes ``shape`` in training mode.

    Raises:
        ShapeError: naming the first layer that misfits, when the checks find it.
    """
    params = {n: _meta_like(p, p.dtype) for n, p in model.named_parameters()}
    buffers = {n: _meta_like(b, b.dtype) for n, b in model.named_buffers()}
    dtype = next((p.dtype for p in params.values() if p.is_floating_point()), torch.float32)
    try:
        with kept_modes(model), torch.no_grad():
            model.train()
            torch.func.functional_call(model, (params, buffers), (torch.zeros(shape, dtype=dtype, device="meta"),))
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        raise _fit_error(model, shape, name, err) from None


def estimate_memory(
    model_or_ref: nn.Module | str,
    input_shape: Sequence[int] | None = None,
    *,
    optimizer: str = "sgd",
    dtype: str | torch.dtype | None = None,
    device: str = "cpu",
) -> MemoryEstimate:
    """Predict the bytes of one training step and one inference forward, without computing anything.

    Args:
        model_or_ref: a module, a registered name, ``package.module:attr`` or ``path/file.py:attr``.
        input_shape: the shape handed to ``forward``, batch included; defaults to a registered network's
            input at batch 1.
        optimizer: ``"sgd"``, ``"momentum"`` (SGD, momentum 0.9) or ``"adam"``.
        dtype: parameters, buffers and input in this floating dtype (default: the model's own).
        device: the device whose kernels to assume: ``"cpu"`` adds oneDNN's in-kernel copies
            (:mod:`archbench.memory.kernels`) and steps the optimizer parameter by parameter; ``"cuda"`` uses
            torch's default ``foreach`` optimizer kernels (temporaries for all parameters at once).

    Returns:
        The :class:`MemoryEstimate`. The model (its parameters, buffers and train/eval flags) is unchanged.

    Raises:
        ArchbenchError: an unknown optimizer, dtype or device.
        ShapeError: an input the network does not take (the message names the first layer that misfits).
    """
    check_optimizer(optimizer)
    if device not in ("cpu", "cuda"):
        raise ArchbenchError(f"Unknown device {device!r}; use cpu or cuda.")
    model, shape, kind, name = resolve_for_memory(model_or_ref, input_shape, meta=True)
    dt = resolve_dtype(dtype, model)

    params = {n: _meta_like(p, dt).requires_grad_(p.requires_grad) for n, p in model.named_parameters()}
    buffers = {n: _meta_like(b, dt) for n, b in model.named_buffers()}
    x = torch.zeros(shape, dtype=dt, device="meta")
    trainable = [p for p in params.values() if p.requires_grad]
    opt = make_optimizer(optimizer, trainable, foreach=device == "cuda") if trainable else None
    if opt is not None:  # a steady-state step: the optimizer state exists before it (one step on zero gradients,
        for p in trainable:  # by the foreach kernels: the same state, a fraction of the meta-tensor calls)
            p.grad = torch.zeros_like(p)
        warm = make_optimizer(optimizer, trainable, foreach=True)
        warm.step()
        opt.state.update(warm.state)  # the state alone: load_state_dict would also switch opt to foreach
        opt.zero_grad(set_to_none=True)
    state = optimizer_tensors(opt)

    def run(train: bool) -> tuple[_LiveStorages, _LayerRecorder | None, int]:
        """One tracked training step (or no-grad forward); returns the tracker, the recorder, target bytes."""
        tracker = _LiveStorages(kernels)
        for tensor in (*params.values(), *buffers.values(), *(state if train else ()), x):
            tracker.add(tensor)
        model_state = {t.untyped_storage()._cdata for t in (*params.values(), *buffers.values())}
        recorder = _LayerRecorder(model, model_state) if train else None
        failure: Exception | None = None
        targets = 0
        with kept_modes(model), contextlib.ExitStack() as stack:
            model.train(train)
            if recorder is not None:
                stack.enter_context(recorder)
                stack.enter_context(torch.autograd.graph.saved_tensors_hooks(recorder.pack, recorder.unpack))
            else:
                stack.enter_context(torch.no_grad())
            stack.enter_context(tracker)
            tracker.phase = "forward"
            try:
                out = torch.func.functional_call(model, (params, buffers), (x,), tie_weights=True, strict=False)
            except (RuntimeError, ValueError, IndexError, TypeError) as err:
                failure = err
            if failure is None and train:
                tracker.phase = "loss"
                recorder.counting = False
                loss = training_loss(out, kind)
                targets = _target_bytes(out)
                tracker.phase = "backward"
                if loss.requires_grad:
                    loss.backward()
                tracker.phase = "optimizer step"
                if opt is not None:
                    opt.step()
        if failure is not None:
            raise _fit_error(model, shape, name, failure) from None
        return tracker, recorder, targets

    kernels = KernelMemory(device)
    train_tracker, recorder, targets = run(train=True)
    grads = storage_bytes(p.grad for p in trainable if p.grad is not None)
    inference_tracker, _, _ = run(train=False)
    assert recorder is not None
    return MemoryEstimate(
        input_shape=shape,
        optimizer=optimizer,
        dtype=str(dt).removeprefix("torch."),
        params=storage_bytes(params.values()),
        buffers=storage_bytes(buffers.values()),
        grads=grads,
        optimizer_state=storage_bytes(state),
        inputs=x.untyped_storage().nbytes() + targets,
        activations=recorder.saved_total,
        peak_train=train_tracker.peak,
        peak_train_phase=train_tracker.peak_phase,
        peak_inference=inference_tracker.peak,
        peak_train_between_ops=train_tracker.between,
        peak_inference_between_ops=inference_tracker.between,
        layers=tuple(LayerMemory(*row) for row in recorder.rows),
        not_predicted=kernels.not_predicted(),
    )
