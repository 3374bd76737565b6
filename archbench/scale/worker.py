"""One DDP rank of ``archbench scale``; torchrun starts one per process (``python -m archbench.scale.worker``).

All ranks of one launch measure every world size ``1 … W``: ranks ``0 … ws-1`` train in a process subgroup of
size ``ws`` while the others wait at a barrier, so one rendezvous serves the whole sweep. World size 1 is a
plain single process (no DDP), the baseline of the scaling efficiency.

The run folder (``--run-dir``) holds ``config.json`` (written by the launcher), ``result.json`` (global rank 0's
numbers, written by local rank 0 of every node) and ``error-rank<R>.json`` (written by a rank that failed: its one-line cause).

Timing per world size (rank 0's view, each step's time the slowest rank's):

* ``step``: forward, loss, backward (with DDP's bucketed all-reduce) and the SGD step;
* ``compute``: the same step under ``DDP.no_sync()``, i.e. without any all-reduce;
* ``allreduce``: wall time during which at least one gradient bucket's all-reduce was in flight, from a DDP
  comm hook that wraps torch's ``allreduce_hook`` (CUDA events on GPU). It overlaps the backward pass, so
  ``compute + allreduce`` may exceed ``step``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import json
import os
import platform
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP

from archbench.errors import ArchbenchError

DIE_RANK_ENV = "ARCHBENCH_SCALE_TEST_DIE_RANK"  # test hook: this global rank kills itself after joining
GRAD_TOLERANCE = 1e-10  # max |Δ| of float64 gradients for "equal"


def _die_with_parent() -> None:
    """Have Linux SIGKILL this worker when its torchrun agent dies, so no worker outlives a killed launch."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the squared error: defined for any output shape, and a mean, as DDP assumes."""
    return (out - target).pow(2).flatten(1).sum(1).mean()


def _build(config: dict[str, Any], device: torch.device, dtype: torch.dtype) -> nn.Module:
    from archbench.refs import parse_model_args, resolve_ref

    torch.manual_seed(config["seed"])  # identical weights on every rank (DDP broadcasts rank 0's anyway)
    return resolve_ref(config["ref"], **parse_model_args(config["model_args"])).module.to(device=device, dtype=dtype).train()


def _batch(config: dict[str, Any], model: nn.Module, n: int, device: torch.device, dtype: torch.dtype):
    """``n`` inputs and targets from a fixed seed: every rank draws the same whole batch."""
    g = torch.Generator().manual_seed(config["seed"] + 1)
    x = torch.randn((n, *config["per_sample"]), generator=g, dtype=dtype)
    with torch.no_grad():
        out_shape = model(x[:2].to(device)).shape[1:] if n >= 2 else model(x.to(device)).shape[1:]
    y = torch.randn((n, *out_shape), generator=g, dtype=dtype)
    return x.to(device), y.to(device)


def _dropout_off(model: nn.Module) -> nn.Module:
    """Dropout draws different masks per process; the gradient check turns it off (batch statistics stay on)."""
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    return model


def _has_batch_stats(model: nn.Module) -> bool:
    return any(
        isinstance(m, nn.modules.batchnorm._BatchNorm) or "batchnorm" in type(m).__name__.lower()
        for m in model.modules()
    )


def _grad_diff(reference: nn.Module, x: torch.Tensor, y: torch.Tensor, sync_bn: bool) -> float:
    """Max |Δ| between DDP's averaged gradients over per-rank shards of ``x`` and ``reference``'s whole-batch ones."""
    rank, b = dist.get_rank(), len(x) // dist.get_world_size()
    model = _dropout_off(copy.deepcopy(reference))
    model.zero_grad(set_to_none=True)
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DDP(model, device_ids=[x.device.index] if x.device.type == "cuda" else None)
    _loss(ddp(x[rank * b : (rank + 1) * b]), y[rank * b : (rank + 1) * b]).backward()
    diff = 0.0
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        if p.grad is None or q.grad is None:
            raise RuntimeError(f"parameter {name} got no gradient")
        diff = max(diff, float((p.grad - q.grad).abs().max()))
    return diff


def gradient_check(config: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """One step from the same weights: DDP over ``ws`` shards against one process over the whole batch (float64)."""
    ws, b = dist.get_world_size(), config["check_batch"]
    reference = _dropout_off(_build(config, device, torch.float64))
    x, y = _batch(config, reference, ws * b, device, torch.float64)
    _loss(reference(x), y).backward()
    check: dict[str, Any] = {
        "world_size": ws,
        "batch_per_rank": b,
        "dtype": "float64",
        "tolerance": GRAD_TOLERANCE,
        "batch_statistics": _has_batch_stats(reference),
        "max_abs_diff": _grad_diff(reference, x, y, sync_bn=False),
        "max_abs_grad": max(float(p.grad.abs().max()) for p in reference.parameters() if p.grad is not None),
        "sync_bn": None,
    }
    converts = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in reference.modules())
    if check["max_abs_diff"] > GRAD_TOLERANCE and converts and ws > 1:
        try:
            check["sync_bn"] = {"status": "ok", "max_abs_diff": _grad_diff(reference, x, y, sync_bn=True)}
        except ValueError as err:  # torch's SyncBatchNorm refuses CPU tensors (torch <= 2.14 at least)
            reason = f"torch {torch.__version__} on {device.type}: {' '.join(str(err).split())}"
            check["sync_bn"] = {"status": "unsupported", "reason": reason, "max_abs_diff": None}
    return check


class _CommTimer:
    """A DDP comm hook: torch's ``allreduce_hook``, with the start and end of each bucket's all-reduce recorded."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.spans: list[tuple[Any, Any]] = []

    def _mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def hook(self, group, bucket):  # unannotated: DDP refuses string annotations of the bucket
        start = self._mark()

        def done(fut: torch.futures.Future[torch.Tensor]) -> torch.Tensor:
            self.spans.append((start, self._mark()))
            return fut.value()

        return default_hooks.allreduce_hook(group, bucket).then(done)

    def busy_seconds(self) -> float:
        """Seconds during which at least one all-reduce was in flight since the last call (union of spans)."""
        if self.cuda:
            base = self.spans[0][0] if self.spans else None
            spans = [(base.elapsed_time(a) / 1e3, base.elapsed_time(b) / 1e3) for a, b in self.spans]
        else:
            spans = list(self.spans)
        self.spans.clear()
        total, end = 0.0, float("-inf")
        for a, b in sorted(spans):
            total += max(0.0, b - max(a, end))
            end = max(end, b)
        return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(config: dict[str, Any], device: torch.device, ws: int, group: dist.ProcessGroup | None) -> dict | None:
    """Time training steps at world size ``ws`` on ranks ``0 … ws-1``; returns rank 0's summary (else None)."""
    model = _build(config, device, torch.float32)
    x, y = _batch(config, model, config["batch"], device, torch.float32)
    comm = _CommTimer(device)
    if ws > 1:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, process_group=group)
        model.register_comm_hook(group, comm.hook)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> float:
        _sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _loss(model(x), y).backward()
        opt.step()
        _sync(device)
        return time.perf_counter() - start

    for _ in range(config["warmup"]):
        step()
    comm.busy_seconds()
    steps, busy = [], []
    for _ in range(config["steps"]):
        steps.append(step())
        busy.append(comm.busy_seconds())
    compute = []
    with model.no_sync() if ws > 1 else contextlib.nullcontext():
        compute = [step() for _ in range(config["steps"])]
    mine = {"steps": steps, "compute": compute, "allreduce": busy}
    everyone = [mine]
    if ws > 1:
        everyone = [None] * ws
        dist.all_gather_object(everyone, mine, group=group)
    if dist.get_rank() != 0:
        return None
    slowest = {k: [max(r[k][i] for r in everyone) for i in range(config["steps"])] for k in mine}
    return {"world_size": ws, **slowest, "params": sum(p.numel() for p in model.parameters())}


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def run(run_dir: Path) -> None:
    """Join the process group, check gradients at the full world size, then time every world size."""
    config = json.loads((run_dir / "config.json").read_text())
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if config["device"] == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.set_num_threads(config["threads"])
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = timedelta(seconds=config["timeout"])
    dist.init_process_group(backend, timeout=timeout, device_id=device if device.type == "cuda" else None)
    if os.environ.get(DIE_RANK_ENV) == str(rank):
        os.kill(os.getpid(), signal.SIGKILL)
    ws_all = dist.get_world_size()
    # Every node's launcher wrote its own config: they must agree (a different batch or model would be silent).
    mine = {k: v for k, v in config.items() if k not in ("node_rank", "threads")}  # may differ per node
    configs: list[Any] = [None] * ws_all
    dist.all_gather_object(configs, mine)
    for r, other in enumerate(configs):
        if other != mine:
            keys = sorted(k for k in mine if mine.get(k) != other.get(k))
            raise ArchbenchError(f"rank {r} was launched with other options ({', '.join(keys)}); give every node the same.")
    check = gradient_check(config, device)
    # Ranks outside a world size wait as long as its measurement takes: a barrier bounded by the run's time limit.
    waiting = dist.new_group(timeout=timedelta(seconds=config["time_limit"]))
    rows = []
    for ws in config["world_sizes"]:
        group = dist.new_group(list(range(ws)), timeout=timeout) if ws > 1 else None  # every rank must call it
        if rank < ws:
            row = measure(config, device, ws, group)
            if row is not None:
                rows.append(row)
        dist.barrier(group=waiting)
    result = [{"rows": rows, "gradient_check": check, "world_size": ws_all, "backend": backend,
               "threads": torch.get_num_threads(), "rank0_host": platform.node()}]  # fmt: skip
    dist.broadcast_object_list(result, src=0)  # every node's launcher gets rank 0's numbers
    if local_rank == 0:
        _write_json(run_dir / "result.json", result[0])
    dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m archbench.scale.worker --run-dir DIR``; a failure leaves its cause in DIR."""
    _die_with_parent()
    argv = sys.argv[1:] if argv is None else argv
    run_dir = Path(argv[argv.index("--run-dir") + 1])
    try:
        run(run_dir)
    except BaseException as err:
        rank = os.environ.get("RANK", "?")
        cause = " ".join((str(err) if isinstance(err, ArchbenchError) else f"{type(err).__name__}: {err}").split())
        _write_json(run_dir / f"error-rank{rank}.json", {"rank": rank, "local_rank": os.environ.get("LOCAL_RANK"),
                                                         "cause": cause[:400], "time": time.time()})  # fmt: skip
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
