"""The machine's compute limit for a benchmark's work, measured in the same run.

A speed figure means little without the limit of the machine that produced it, so the speed
benchmarks measure it beside their subjects: one thread's `torch.addmm` rate on the model's
own hidden-layer shape (the products are where a model's FLOPs are), times the number of cores
the subject may use. On these machines one thread's rate is the core's peak on every hidden
shape the models use (85-88 GFLOP/s from 200 x 128 x 128 up), and MKL's own threads add
little at these sizes, so `rate x cores` is what the hardware allows; a subject's figure as a
fraction of `limit = rate x cores / FLOPs per item` says how much of it the code uses.

`rate x cores` assumes that the cores, each running one thread, do not slow each other
down (shared caches, memory bandwidth, another tenant of the host); `cores_check` times that
in the same run: one process per core, one thread each, all on the same product at once.

FLOPs count the matrix products only (2 per multiply-add), which is what the limit is made of;
activations, biases and the rest are the overhead the fraction exposes.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from typing import Any

import torch

__all__ = [
    "Limit",
    "addmm_gflops",
    "cores_check",
    "mlp_flops",
    "node_so_transition_flops",
]


def addmm_gflops(rows: int, inner: int, cols: int, *, seconds: float = 0.2) -> float:
    """GFLOP/s of one thread's `torch.addmm` on `(rows, inner) @ (inner, cols)` float32 (the
    median of 5 timings of `seconds` each); the caller's thread count is restored."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bias = torch.randn(cols)
        left, right = torch.randn(rows, inner), torch.randn(inner, cols)
        out = torch.empty(rows, cols)
        torch.addmm(bias, left, right, out=out)
        rates = []
        for _ in range(5):
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                torch.addmm(bias, left, right, out=out)
                calls += 1
            rates.append(2.0 * rows * inner * cols * calls / elapsed / 1e9)
        return statistics.median(rates)
    finally:
        torch.set_num_threads(threads)


def _time_addmm_at_once(shape: tuple[int, int, int], seconds: float, start: Any, out: Any) -> None:
    """One process of `concurrent_addmm_gflops`: one thread's addmm rate, timed from `start`."""
    torch.set_num_threads(1)
    rows, inner, cols = shape
    bias, left, right = torch.randn(cols), torch.randn(rows, inner), torch.randn(inner, cols)
    result = torch.empty(rows, cols)
    torch.addmm(bias, left, right, out=result)
    start.wait()
    calls, begin = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - begin) < seconds:
        torch.addmm(bias, left, right, out=result)
        calls += 1
    out.put(2.0 * rows * inner * cols * calls / elapsed / 1e9)


def concurrent_addmm_gflops(
    rows: int, inner: int, cols: int, processes: int, *, seconds: float = 1.0
) -> list[float]:
    """GFLOP/s of `processes` processes at once, each one thread of `torch.addmm` on
    `(rows, inner) @ (inner, cols)` for `seconds`, started together."""
    context = multiprocessing.get_context("spawn")  # no fork of a process with torch threads
    start, out = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_time_addmm_at_once, args=((rows, inner, cols), seconds, start, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    return rates


def cores_check(rows: int, inner: int, cols: int, cores: int, gflops: float) -> str:
    """A line saying whether `rate x cores` holds here: `cores` processes of one thread each,
    timed at once on the same product, against `gflops` (one thread alone)."""
    if cores < 2:
        return "one core: the limit is one thread's rate"
    rates = concurrent_addmm_gflops(rows, inner, cols, cores)
    shown = " + ".join(f"{rate:.1f}" for rate in rates)
    return (
        f"the limit's 'x {cores} cores', checked now: {cores} processes of one thread at once "
        f"on {rows} x {inner} x {cols}: {shown} = {sum(rates):.1f} GFLOP/s, "
        f"{sum(rates) / gflops:.2f}x one thread alone ({gflops:.1f})"
    )


def mlp_flops(in_dim: int, hidden: int, layers: int, out_dim: int) -> int:
    """Matrix-product FLOPs of one row through `in_dim -> hidden x layers -> out_dim`."""
    return 2 * (in_dim * hidden + (layers - 1) * hidden * hidden + hidden * out_dim)


def node_so_transition_flops(
    obs_dim: int, action_dim: int, hidden: int, layers: int, substeps: int
) -> int:
    """One node-so transition on `[q, v]` data: the action's first-layer term once, then the
    network `q_dim + v_dim -> hidden -> ... -> v_dim` (the acceleration, emitted as
    `[h^2/2 a, h a]`, `obs_dim` outputs) at every averaged-velocity substep."""
    per_evaluation = mlp_flops(obs_dim, hidden, layers, obs_dim)
    return 2 * action_dim * hidden + substeps * per_evaluation


class Limit:
    """The compute limit of `flops_per_item` FLOPs per item on `cores` cores at one thread's
    `gflops`: `per_second` items/s; `fraction(rate)` of it reached by a measured rate."""

    def __init__(self, flops_per_item: float, gflops: float, cores: int) -> None:
        self.flops_per_item = flops_per_item
        self.gflops = gflops
        self.cores = cores
        self.per_second = gflops * 1e9 * cores / flops_per_item

    def fraction(self, per_second: float) -> float:
        return per_second / self.per_second

    def describe(self, unit: str) -> str:
        return (
            f"compute limit {self.per_second:,.0f} {unit}/s = {self.gflops:.1f} GFLOP/s (one "
            f"thread's addmm, measured now) x {self.cores} core(s) / "
            f"{self.flops_per_item / 1e3:,.1f} kFLOP per {unit}"
        )
