"""The machine's compute limit for a benchmark's work, measured in the same run.

A speed figure means little without the limit of the machine that produced it, so the speed
benchmarks measure it beside their subjects: one thread's `torch.addmm` rate on the model's
own hidden-layer shape (the products are where a model's FLOPs are), times the number of cores
the subject may use. On these machines one thread's rate is the core's peak on every hidden
shape the models use (85-88 GFLOP/s from 200 x 128 x 128 up), and MKL's own threads add
little at these sizes, so `rate x cores` is what the hardware allows; a subject's figure as a
fraction of `limit = rate x cores / FLOPs per item` says how much of it the code uses.

FLOPs count the matrix products only (2 per multiply-add), which is what the limit is made of;
activations, biases and the rest are the overhead the fraction exposes.
"""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["Limit", "addmm_gflops", "mlp_flops", "node_so_transition_flops"]


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
