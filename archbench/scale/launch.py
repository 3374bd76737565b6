"""``archbench scale``: data-parallel training through torchrun and DDP, per world size ``1 … N×M``.

The launcher checks every option here (model, sizes, device, endpoint, output path), then starts
``python -m torch.distributed.run`` in its own process session with bounded timeouts (rendezvous join and
read, every collective, the whole run) and ``--max-restarts 0``. The ranks
(:mod:`archbench.scale.worker`) check DDP's gradients against one process's and time every world size;
every node's launcher receives global rank 0's numbers and turns them into a pytest-benchmark-shaped JSON
(``world_size`` in each row's ``extra_info``, the gradient check under ``"archbench_scale"``).

A failure ends as one :class:`ScaleFailure` sentence naming the rank (or node) and the cause, taken from the
ranks' own error files and torchrun's "Root Cause" summary; the torchrun process and its workers are gone
when :func:`run_scale` returns (workers die with their agent, the agent's process group is killed).

Multi-node: run the same command on every node with ``--nnodes M --node-rank R --rdzv-endpoint HOST:PORT``;
node rank 0 hosts torchrun's c10d rendezvous store on HOST:PORT (an address of its own machine).

Example:
    >>> config = ScaleConfig("lenet5", per_sample=(1, 28, 28), batch=8, nproc_per_node=2)
    >>> config.world_sizes, config.world_size
    ([1, 2], 2)
    >>> ScaleConfig("lenet5", per_sample=(1, 28, 28), nproc_per_node=2, nnodes=2, node_rank=1,
    ...             rdzv_endpoint="10.0.0.1:29500").world_sizes
    [1, 2, 3, 4]
"""

from __future__ import annotations

import ast
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archbench.errors import ArchbenchError

SCALE_KEY = "archbench_scale"  # top-level JSON key: the gradient check and the launch
MODE = "ddp_train_step"
GROUP_PREFIX = "scale"


class ScaleFailure(RuntimeError):
    """The distributed run failed; ``str()`` is one sentence naming the rank or node and the cause."""


@dataclass(frozen=True)
class ScaleConfig:
    """What one node launches.

    Attributes:
        ref: a model reference (each rank re-resolves it).
        options: builder keywords (``--model-arg``).
        per_sample: one sample's shape.
        batch: images per rank per step.
        nproc_per_node, nnodes, node_rank, rdzv_endpoint: torchrun's launch options.
        device: ``cpu`` (gloo) or ``cuda`` (NCCL, one GPU per rank).
        steps, warmup: timed and untimed steps per world size.
        threads: torch intra-op threads per rank (default: usable cores / ranks per node).
        timeout: seconds for the rendezvous and for each collective.
        time_limit: seconds for the whole launch, after which it is stopped.
        seed: weights and data.
    """

    ref: str
    options: dict[str, Any] = field(default_factory=dict)
    per_sample: tuple[int, ...] = ()
    batch: int = 32
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    device: str = "cpu"
    steps: int = 10
    warmup: int = 2
    threads: int | None = None
    timeout: float = 60.0
    time_limit: float = 1800.0
    seed: int = 0

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def world_sizes(self) -> list[int]:
        return list(range(1, self.world_size + 1))

    def worker_config(self) -> dict[str, Any]:
        """The JSON every rank reads (identical on every node, which the ranks check)."""
        from archbench.bench.machine import usable_cores

        threads = self.threads or max(1, usable_cores() // self.nproc_per_node)
        keep = ("ref", "batch", "device", "steps", "warmup", "timeout", "time_limit", "seed", "node_rank")
        return {**{k: getattr(self, k) for k in keep}, "per_sample": list(self.per_sample), "threads": threads,
                "model_args": [f"{k}={v!r}" for k, v in self.options.items()],  # parse_model_args reads them back
                "world_sizes": self.world_sizes, "check_batch": max(2, min(self.batch, 8))}  # fmt: skip


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArchbenchError(f"--rdzv-endpoint {text!r} must be HOST:PORT with a port from 1 to 65535, e.g. 10.0.0.1:29500.")
    return host.strip("[]"), int(port)


def check_port(host: str, port: int) -> None:
    """Refuse an endpoint this node must host but cannot bind (in use, or not one of its addresses)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            why = "is in use" if err.errno == 98 else f"cannot be bound here ({err.strerror})"
            raise ArchbenchError(
                f"Port {port} on {host} {why}, and this node (node rank 0) must host the rendezvous there; "
                "pick a free port of this machine's address for --rdzv-endpoint."
            ) from None


def check_options(config: ScaleConfig) -> None:
    """Everything that can be checked before launching; raises :class:`ArchbenchError` with one sentence."""
    if config.nproc_per_node < 1 or config.nnodes < 1:
        raise ArchbenchError(
            f"--nproc-per-node and --nnodes must be at least 1, got {config.nproc_per_node} and {config.nnodes}."
        )
    if not 0 <= config.node_rank < config.nnodes:
        raise ArchbenchError(f"--node-rank must be from 0 to {config.nnodes - 1} (--nnodes {config.nnodes}), got {config.node_rank}.")
    if config.nnodes > 1 and not config.rdzv_endpoint:
        raise ArchbenchError("A run on several nodes needs --rdzv-endpoint HOST:PORT of node rank 0, the same on every node.")
    if config.steps < 1 or config.warmup < 0 or config.timeout <= 0 or config.time_limit <= 0:
        raise ArchbenchError("--steps must be at least 1, --warmup at least 0, and the timeouts positive.")
    if config.device not in ("cpu", "cuda"):
        raise ArchbenchError(f"--device must be cpu or cuda, got {config.device!r}.")
    if config.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ArchbenchError("--device cuda was asked for but CUDA is not available on this machine; use --device cpu.")
        if config.nproc_per_node > torch.cuda.device_count():
            raise ArchbenchError(
                f"--nproc-per-node {config.nproc_per_node} needs one GPU per rank, but this node has "
                f"{torch.cuda.device_count()}; lower it."
            )
    for key, value in config.options.items():
        try:
            same = ast.literal_eval(repr(value)) == value
        except (ValueError, SyntaxError):
            same = False
        if not same:
            raise ArchbenchError(f"Model option {key}={value!r} must be a Python literal to reach every rank; give a number, string, tuple...")
    if config.rdzv_endpoint:
        host, port = _endpoint(config.rdzv_endpoint)
        if config.node_rank == 0:
            check_port(host, port)


def check_output(path: str | Path) -> Path:
    """Refuse an output path that cannot be written, before the long run (its folder is created)."""
    path = Path(path)
    if path.is_dir():
        raise ArchbenchError(f"--json {path} is a folder; give a file name such as {path / 'scale.json'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ArchbenchError(f"--json {path}: its folder cannot be created ({err.strerror}); give another path.") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ArchbenchError(f"--json {path} is not writable; give another path.")
    return path


def torchrun_command(config: ScaleConfig, run_dir: Path) -> list[str]:
    """The ``python -m torch.distributed.run`` command line of this node."""
    t = max(1, round(config.timeout))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(config.nnodes),
           "--nproc-per-node", str(config.nproc_per_node), "--max-restarts", "0", "--monitor-interval", "0.1"]  # fmt: skip
    conf = f"join_timeout={t},read_timeout={t},last_call_timeout=1"
    if config.rdzv_endpoint:
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", config.rdzv_endpoint, "--rdzv-id", "archbench-scale",
                "--rdzv-conf", f"{conf},is_host={int(config.node_rank == 0)}"]  # fmt: skip
    else:
        cmd += ["--standalone", "--rdzv-conf", conf]
    return [*cmd, "-m", "archbench.scale.worker", "--run-dir", str(run_dir)]


_FAILURE = re.compile(r"rank\s*:\s*(\d+) \(local_rank: (\d+)\)\s+exitcode\s*:\s*(-?\d+)[^\n]*\n(?:.*\n)*?\s*traceback\s*:\s*(.*)")
_EXCEPTION = re.compile(r"^([\w.]*(?:Error|Exception|Timeout)): (.+)$", re.M)


def failure_line(run_dir: Path, log: str, node_rank: int) -> str:
    """One sentence for a failed launch: a killed rank, else the first rank's own error, else torchrun's."""
    other, _, root = log.partition("Root Cause (first observed failure)")
    failures = [(int(r), int(lr), int(c), tb.strip()) for text in (root, other) for r, lr, c, tb in _FAILURE.findall(text)]
    for rank, local, code, _ in failures:
        if code < 0 and -code not in (signal.SIGTERM, signal.SIGINT):  # those the agent sends to stop the others
            name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
            return f"rank {rank} (node rank {node_rank}, local rank {local}) was killed by {name}; the run was stopped"
    errors = []
    for path in run_dir.glob("error-rank*.json"):
        try:
            errors.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    if errors:
        first = min(errors, key=lambda e: e["time"])
        return f"rank {first['rank']} (node rank {node_rank}, local rank {first['local_rank']}) failed: {first['cause']}"
    for rank, local, code, tb in failures:
        return f"rank {rank} (node rank {node_rank}, local rank {local}) exited with code {code}: {tb}"
    found = _EXCEPTION.findall(log)
    if found:
        kind, message = found[-1]
        if "inner exception" in message and len(found) > 1:
            message = found[-2][1]  # e.g. "The client socket has timed out ... to connect to (HOST, PORT)."
        kind = kind.rsplit(".", 1)[-1]
        hint = {
            "RendezvousTimeoutError": "; start every node's launcher within --timeout and check --nnodes",
            "RendezvousConnectionError": "; check --rdzv-endpoint and that node rank 0 is running",
        }.get(kind, "")
        return f"node rank {node_rank}: torchrun's rendezvous failed ({kind}: {' '.join(message.split())[:300]}){hint}"
    tail = " ".join(log.strip().splitlines()[-1:]) or "no output"
    return f"node rank {node_rank}: torchrun failed ({tail[:300]})"


def _stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop torchrun and its process group (its workers die with it: they set a parent-death signal)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    try:  # anything else left in the group (the agent's helpers)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def launch(config: ScaleConfig, run_dir: Path) -> dict[str, Any]:
    """Run torchrun on this node; returns global rank 0's result (every node gets it).

    Raises:
        ScaleFailure: a rank died or raised, the rendezvous failed, or the time limit passed.
    """
    (run_dir / "config.json").write_text(json.dumps(config.worker_config()))
    env = dict(os.environ, OMP_NUM_THREADS=str(config.worker_config()["threads"]))
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the archbench package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    log_path = run_dir / "torchrun.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(torchrun_command(config, run_dir), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(config.time_limit)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise ScaleFailure(
                f"node rank {config.node_rank}: the run did not finish within {config.time_limit:g} s (--time-limit), "
                f"so it was stopped; torchrun's log: {log_path}"
            ) from None
        finally:
            _stop(proc)  # a no-op after a clean exit; kills the group on Ctrl-C or any error
    if code != 0:
        text = log_path.read_text(errors="replace")
        raise ScaleFailure(f"{failure_line(run_dir, text, config.node_rank)}; torchrun's log: {log_path}")
    try:
        return json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        raise ScaleFailure(f"node rank {config.node_rank}: torchrun succeeded but no rank left results; see {log_path}") from None


def _stats(data: list[float]) -> dict[str, Any]:
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for value in data:
        stats.update(value)
    return {**stats.as_dict(), "data": list(data), "iterations": 1}


def to_benchmark_json(config: ScaleConfig, result: dict[str, Any]) -> dict[str, Any]:
    """rank 0's result as a pytest-benchmark-shaped document (see the module docstring)."""
    import pytest_benchmark

    from archbench.bench.cases import SuiteOptions
    from archbench.bench.plugin import fingerprint

    label = config.ref if not config.options else f"{config.ref}({', '.join(f'{k}={v}' for k, v in config.options.items())})"
    rows = result["rows"]
    base = next((r for r in rows if r["world_size"] == 1), None)
    base_rate = config.batch / statistics.median(base["steps"]) if base else None
    benchmarks = []
    for r in rows:
        ws, step = r["world_size"], statistics.median(r["steps"])
        rate = ws * config.batch / step
        info = {
            "model": label, "mode": MODE, "device": config.device, "dtype": "float32", "batch": config.batch,
            "global_batch": ws * config.batch, "input_shape": list(config.per_sample), "threads": result["threads"],
            "params": r["params"], "world_size": ws, "nnodes": config.nnodes, "nproc_per_node": config.nproc_per_node,
            "backend": result["backend"] if ws > 1 else None, "images_per_s": rate,
            "scaling_efficiency": rate / (ws * base_rate) if base_rate else None, "step_s": step,
            "compute_s": statistics.median(r["compute"]), "allreduce_s": statistics.median(r["allreduce"]), "status": "ok",
        }  # fmt: skip
        name = f"scale[{label}-{config.device}-ws{ws}-b{config.batch}]"
        benchmarks.append({"group": f"{GROUP_PREFIX}-{label}-{config.device}", "name": name, "fullname": name,
                           "params": None, "param": None, "extra_info": info, "options": {"warmup": config.warmup},
                           "stats": _stats(r["steps"])})  # fmt: skip
    machine = {"node": platform.node(), "machine": platform.machine(), "system": platform.system(),
               "python_version": platform.python_version(),
               "archbench": fingerprint(SuiteOptions(threads=result["threads"], device=config.device))}  # fmt: skip
    launch_info = {k: v for k, v in asdict(config).items() if k not in ("options",)}
    return {"machine_info": machine, "commit_info": {}, "benchmarks": benchmarks,
            "datetime": datetime.now(timezone.utc).isoformat(), "version": pytest_benchmark.__version__,
            SCALE_KEY: {"gradient_check": result["gradient_check"], "world_size": result["world_size"],
                        "rank0_host": result["rank0_host"],
                        "options": config.options, "launch": launch_info}}  # fmt: skip


def run_scale(
    config: ScaleConfig, json_path: str | Path | None = None, *, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Check the options, launch, and return (and write, atomically) the results document.

    Args:
        config: what to launch.
        json_path: where to write the document (checked before launching).
        log: called with a progress line once the options are checked.

    Returns:
        The document (on every node: global rank 0's numbers, this node's ``machine_info``).

    Raises:
        ArchbenchError: a bad option or output path (before anything is launched).
        ScaleFailure: the distributed run failed.
    """
    check_options(config)
    out = check_output(json_path) if json_path else None
    run_dir = Path(tempfile.mkdtemp(prefix="archbench-scale-"))
    if log:
        from archbench.bench.machine import usable_cores

        log(f"{config.ref}: world sizes 1 to {config.world_size} through torchrun on {config.device} "
            f"(node rank {config.node_rank} of {config.nnodes}; run folder {run_dir})")  # fmt: skip
        threads, cores = config.worker_config()["threads"], usable_cores()
        if config.device == "cpu" and config.nproc_per_node * threads > cores:
            log(f"note: {config.nproc_per_node} ranks × {threads} threads share {cores} usable cores, "
                "so the larger world sizes compete for them")  # fmt: skip
    result = launch(config, run_dir)  # on failure run_dir stays, with torchrun's log
    doc = to_benchmark_json(config, result)
    if out is not None:
        from archbench.report.files import write_text

        write_text(out, json.dumps(doc, indent=2) + "\n")
    shutil.rmtree(run_dir, ignore_errors=True)
    return doc


def load_scale(path: str | Path) -> dict[str, Any]:
    """Read a JSON written by ``archbench scale --json``; raises :class:`ArchbenchError` if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ArchbenchError(f"Scale results {path} cannot be read ({type(err).__name__}); re-run `archbench scale --json {path}`.") from None
    if not is_scale_results(data):
        raise ArchbenchError(f"{path} was not written by `archbench scale --json` (no {SCALE_KEY!r} section).")
    return data


def is_scale_results(data: object) -> bool:
    """Whether a loaded JSON document came from ``archbench scale`` (so a report knows which section it feeds)."""
    return isinstance(data, dict) and isinstance(data.get(SCALE_KEY), dict) and isinstance(data.get("benchmarks"), list)
