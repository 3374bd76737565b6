"""The data-parallel scaling section: a table per world size and the gradient check, from ``archbench scale --json``.

Example:
    >>> doc = {"benchmarks": [{"extra_info": {"model": "lenet5", "device": "cpu", "world_size": 1, "batch": 8,
    ...     "global_batch": 8, "images_per_s": 800.0, "scaling_efficiency": 1.0, "step_s": 0.01,
    ...     "compute_s": 0.01, "allreduce_s": 0.0, "backend": None, "threads": 1, "nnodes": 1}}],
    ...     "machine_info": {"archbench": {"torch": "2.14.1", "cpu_model": "AMD EPYC", "gpu": None}},
    ...     "archbench_scale": {"gradient_check": {"world_size": 1, "batch_per_rank": 2, "tolerance": 1e-10,
    ...         "max_abs_diff": 0.0, "max_abs_grad": 1.0, "batch_statistics": False, "sync_bn": None}}}
    >>> print(scale_markdown(doc).splitlines()[0])
    ## Data-parallel scaling: lenet5 on cpu
    >>> gradient_verdict(doc["archbench_scale"]["gradient_check"])[0]
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from archbench.scale.launch import SCALE_KEY

HEADERS = ("world size", "images/s", "efficiency", "step ms", "compute ms", "all-reduce ms", "global batch")
_RIGHT = ("right",) * len(HEADERS)


def scale_rows(doc: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per world size: throughput, efficiency, median step / compute (no_sync) / all-reduce (hook) times."""
    rows = []
    for entry in sorted(doc["benchmarks"], key=lambda b: b["extra_info"]["world_size"]):
        i = entry["extra_info"]
        eff = i["scaling_efficiency"]
        rows.append((
            str(i["world_size"]), f"{i['images_per_s']:,.0f}", "-" if eff is None else f"{eff:.0%}",
            f"{i['step_s'] * 1e3:.2f}", f"{i['compute_s'] * 1e3:.2f}",
            f"{i['allreduce_s'] * 1e3:.2f}" if i["world_size"] > 1 else "-", str(i["global_batch"]),
        ))  # fmt: skip
    return rows


def gradient_verdict(check: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the gradient check passed (or differs only for a stated reason), and one sentence saying so."""
    diff, tol, ws = check["max_abs_diff"], check["tolerance"], check["world_size"]
    head = (f"Gradients after one step (float64, world size {ws}, {check['batch_per_rank']} images per rank): "
            f"DDP over shards vs one process over the whole batch, max |Δ| = {diff:.3g}")  # fmt: skip
    if diff <= tol:
        return True, f"{head} ≤ {tol:g}: equal."
    if not check["batch_statistics"]:
        return False, f"{head} > {tol:g}: DIFFERENT, and the network has no batch statistics to explain it."
    text = f"{head} (max |grad| {check['max_abs_grad']:.3g}): each replica normalises with its own batch statistics."
    sync = check.get("sync_bn")
    if sync is None:
        return True, f"{text} SyncBatchNorm does not apply (no torch BatchNorm layer, or world size 1)."
    if sync["status"] == "unsupported":
        return True, f"{text} torch's SyncBatchNorm could not be checked here: {sync['reason']}"
    if sync["max_abs_diff"] <= tol:
        return True, f"{text} With torch's SyncBatchNorm max |Δ| = {sync['max_abs_diff']:.3g} ≤ {tol:g}: equal."
    return False, f"{text} With torch's SyncBatchNorm max |Δ| = {sync['max_abs_diff']:.3g} > {tol:g}: DIFFERENT."


def _about(doc: Mapping[str, Any]) -> tuple[str, str]:
    first = doc["benchmarks"][0]["extra_info"] if doc["benchmarks"] else {}
    env = doc["machine_info"].get("archbench", {})
    gpu = env.get("gpu")
    gpu = gpu.get("name") if isinstance(gpu, dict) else gpu  # older files kept a dict
    where = gpu if first.get("device") == "cuda" and gpu else f"{env.get('cpu_model', '?')}, {env.get('cpu_cores_usable', '?')} usable cores"
    backend = next((b["extra_info"]["backend"] for b in doc["benchmarks"] if b["extra_info"]["backend"]), None)
    detail = (f"{first.get('batch')} images per rank, {first.get('threads')} thread(s) per rank, "
              f"{first.get('nnodes', 1)} node(s), backend {backend or '-'}, torch {env.get('torch')}, {where}")  # fmt: skip
    return f"{first.get('model', '?')} on {first.get('device', '?')}", detail


NOTE = (
    "Efficiency = images/s ÷ (world size × single-process images/s); world size 1 is one process without DDP. "
    "Step = forward, backward with DDP's all-reduce, SGD step (median, slowest rank); compute = the same step "
    "under `no_sync()`; all-reduce = wall time with a gradient bucket's all-reduce in flight (a comm hook around "
    "torch's `allreduce_hook`), overlapping the backward pass."
)


def scale_markdown(doc: Mapping[str, Any]) -> str:
    """The markdown section for a scale results document (:func:`archbench.scale.launch.load_scale`)."""
    title, detail = _about(doc)
    _, verdict = gradient_verdict(doc[SCALE_KEY]["gradient_check"])
    table = tabulate(scale_rows(doc), headers=HEADERS, tablefmt="pipe", disable_numparse=True, colalign=_RIGHT)
    return f"## Data-parallel scaling: {title}\n\n{detail}.\n\n{table}\n\n{NOTE}\n\n{verdict}\n"


def scale_table(doc: Mapping[str, Any]) -> str:
    """The same for the terminal."""
    title, detail = _about(doc)
    _, verdict = gradient_verdict(doc[SCALE_KEY]["gradient_check"])
    table = tabulate(scale_rows(doc), headers=HEADERS, disable_numparse=True, colalign=_RIGHT)
    return f"{title}: {detail}\n{table}\n{verdict}"
