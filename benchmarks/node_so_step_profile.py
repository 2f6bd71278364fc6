"""Where one thread's time goes in a batched node-so step, against the machine's limit.

The learned vector env, CEM and evaluation all run node-so through the same inference loop
(`models/_inference_rollout.py`: per substep three `addmm` into preallocated buffers, two
in-place activations, two in-place adds). This script, on one thread and `--rows` rows
(default 4,096, HalfCheetah's dimensions: state 18, action 6, 2 x 128 hidden, 8 substeps):

1. times each of the step's matrix products alone (`torch.addmm` with `out=`, the weights'
   own layout) and prints its GFLOP/s next to the hidden layer's, the rate `_limits.py`
   takes as the machine's limit;
2. times the activation alone (`sigmoid`, which is node-so's tanh folded as
   `2 sigmoid(2x) - 1`) in ns per number;
3. profiles whole steps with `torch.profiler` and prints each operator's share of the time;
4. with `--compile`, times the bias add and sigmoid fused by `torch.compile` (its C++
   backend) against eager's two calls, to see whether the passes over memory or the
   activation's arithmetic cost.

    python benchmarks/node_so_step_profile.py              # about 20 seconds
    python benchmarks/node_so_step_profile.py --rows 400 --compile
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import torch
from _limits import addmm_gflops
from torch.profiler import ProfilerActivity, profile

from physprior.models import make

OBS, ACTION, HIDDEN, SUBSTEPS = 18, 6, 128, 8


def best_seconds(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """The fastest of `repeats` timings of `calls` calls, per call, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def node_so_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = make("node-so", obs_dim=OBS, action_dim=ACTION, q_dim=OBS // 2, state_layout="qv",
                 dt=0.05, hidden=HIDDEN, layers=2, substeps=SUBSTEPS)  # fmt: skip
    states = torch.randn(512, 2, OBS)
    model.fit_normalization(states, torch.rand(512, 1, ACTION) * 2 - 1)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4096, help="rows per step (4096)")
    parser.add_argument("--steps", type=int, default=10, help="profiled steps (10)")
    parser.add_argument("--compile", action="store_true", help="also time a compiled fusion")
    args = parser.parse_args()
    if args.rows < 1 or args.steps < 1:
        parser.error("--rows and --steps must be at least 1")
    torch.set_num_threads(1)
    rows = args.rows
    model = node_so_model()
    with torch.inference_mode():
        net = model._folded(increment=model.dt / SUBSTEPS)
        weights = {
            f"{OBS} -> {HIDDEN} (input)": net.in_weight,
            f"{HIDDEN} -> {HIDDEN} (hidden)": net.hidden[0][0],
            f"{HIDDEN} -> {OBS} (output)": net.out_weight,
        }
        print(f"one thread, {rows} rows, torch {torch.__version__}")
        limit = addmm_gflops(rows, HIDDEN, HIDDEN)
        print(f"limit (_limits.addmm_gflops on {rows} x {HIDDEN} x {HIDDEN}): {limit:.1f} GFLOP/s")
        for name, weight in weights.items():
            inner, cols = weight.shape
            left, bias, out = torch.randn(rows, inner), torch.randn(cols), torch.empty(rows, cols)
            seconds = best_seconds(functools.partial(torch.addmm, bias, left, weight, out=out), 50)
            rate = 2.0 * rows * inner * cols / seconds / 1e9
            print(f"  addmm {name:<22} {seconds * 1e6:8.0f} us {rate:6.1f} GFLOP/s "
                  f"({rate / limit:.0%} of the limit)")  # fmt: skip
        hidden, activated = torch.randn(rows, HIDDEN), torch.empty(rows, HIDDEN)
        seconds = best_seconds(functools.partial(torch.sigmoid, hidden, out=activated), 50)
        print(f"  sigmoid on {rows} x {HIDDEN}: {seconds * 1e6:.0f} us, "
              f"{seconds / hidden.numel() * 1e9:.2f} ns per number")  # fmt: skip

        z = torch.randn(rows, OBS)
        u = torch.rand(rows, ACTION) * 2 - 1
        for _ in range(2):
            model.step(z, u)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                model.step(z, u)
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        print(f"torch.profiler, {args.steps} node-so steps of {rows} rows, share of self time:")
        for event in events[:6]:
            share = event.self_cpu_time_total / total
            print(f"  {event.key:<22} {share:6.1%}  ({event.count} calls)")

    if args.compile:
        x, b, y = torch.randn(rows, HIDDEN), torch.randn(HIDDEN), torch.empty(rows, HIDDEN)
        fused = torch.compile(lambda x, b: torch.sigmoid(x + b), dynamic=False)
        torch.testing.assert_close(fused(x, b), torch.sigmoid(x + b))
        compiled = best_seconds(lambda: fused(x, b), 50)
        eager = best_seconds(lambda: torch.add(x, b, out=y).sigmoid_(), 50)
        print(f"bias add + sigmoid on {rows} x {HIDDEN}: compiled {compiled * 1e6:.0f} us, "
              f"eager {eager * 1e6:.0f} us ({eager / compiled:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
