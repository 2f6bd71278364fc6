"""The eager-torch floor of one PETS decision: what the decision's kernels alone cost here.

A CEM decision with TS-inf particles on an ensemble of probabilistic SiLU MLPs, written as
the fewest eager torch calls that still do all of its arithmetic: sampling the candidates,
spreading their particles over the members, the members' first-layer action terms for
the whole horizon at once, per step one batched product per layer with SiLU between, the
bounded standard deviation and the Gaussian draw, HalfCheetah's reward (forward progress
and control cost), the particles' mean return, the elites and the refit. Weights are
random (the cost does not depend on their values), everything is preallocated or
broadcast, and nothing is checked: no input validation, no divergence or termination
masking, no normalisation (physprior folds it into the weights anyway). No implementation
built on torch's CPU kernels, called one at a time from Python, does less work per decision,
so it bounds how fast `run_pets`'s decision can get on this machine, and the ratio of
mbrl-lib's decision to it bounds the speed-up any such implementation can show.

Run alone, it times the floor eager and with its rollout under `torch.compile`, alternating
in one process (default sizes: `pets_vs_mbrl_lib.py`'s default budget):

    python benchmarks/_pets_floor.py                 # about a minute, most of it compiling
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.nn.functional import silu


def floor_decisions(
    *,
    ensemble: int,
    hidden: int,
    layers: int,
    population: int,
    horizon: int,
    iterations: int,
    elites: int,
    alpha: float,
    particles: int,
    obs_dim: int = 18,
    action_dim: int = 6,
    seed: int = 0,
    compiled: bool = False,
) -> Callable[[int], float]:
    """The floor's decision for members of `layers` hidden layers of `hidden` units and the
    CEM sizes given, built once: a function of a number of decisions that runs them (after a
    fifth of them as warm-up) and returns the median milliseconds per decision of 5 blocks,
    at the caller's torch thread setting. `compiled`: the rollout under `torch.compile`
    (compiled during the first warm-up, not timed)."""
    if (population * particles) % ensemble:
        raise ValueError("population * particles must divide evenly among the members")
    k, d, a, h = ensemble, obs_dim, action_dim, hidden
    rows = population * particles // k  # particles per member
    g = torch.Generator().manual_seed(seed)

    def weights(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) / shape[-2] ** 0.5

    state_in, action_in, in_bias = weights(k, d, h), weights(k, a, h), torch.zeros(k, 1, h)
    hidden_layers = [(weights(k, h, h), torch.zeros(k, 1, h)) for _ in range(layers - 1)]
    out_weight, out_bias = weights(k, h, 2 * d), torch.zeros(k, 1, 2 * d)
    gap, ones = torch.full((k, 1, d), 2.0), torch.ones(k, 1, d)
    noise_scale = torch.full((k, 1, 1, d), 0.01)
    noise = torch.empty(k, rows, horizon, d)
    candidate_noise = torch.empty(population, horizon, a)

    def rollout_x(z: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Root x positions `(K, M, H)` of the particles `z (K, M, D)` under `actions`, with
        standard normal `noise (K, M, H, D)`."""
        flat = actions.transpose(1, 2).reshape(k, horizon * rows, a)
        biases = torch.baddbmm(in_bias, flat, action_in).view(k, horizon, rows, h)
        scaled = noise * noise_scale
        xs = []
        for t in range(horizon):
            x = silu(torch.baddbmm(biases[:, t], z, state_in))
            for weight, bias in hidden_layers:
                x = silu(torch.baddbmm(bias, x, weight))
            out = torch.baddbmm(out_bias, x, out_weight)
            spread = torch.addcmul(ones, gap, torch.sigmoid(out[..., d:])).sqrt_()
            z = torch.addcmul(z + out[..., :d], spread, scaled[:, :, t])
            xs.append(z[..., 0])
        return torch.stack(xs, dim=-1)

    roll = torch.compile(rollout_x, fullgraph=True, dynamic=False) if compiled else rollout_x

    def decision(obs: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        std = torch.full_like(mean, 0.5)
        start = obs.expand(k, rows, d)
        x0 = obs[0].expand(k, rows, 1)
        for _ in range(iterations):
            torch.randn(candidate_noise.shape, generator=g, out=candidate_noise)
            candidates = torch.addcmul(mean, std, candidate_noise).clamp_(-1.0, 1.0)
            order = torch.randperm(population * particles, generator=g)
            actions = candidates.repeat_interleave(particles, 0)[order].view(k, rows, horizon, a)
            torch.randn(noise.shape, generator=g, out=noise)  # outside: compile refuses it
            x = roll(start, actions, noise)
            progress = (x - torch.cat((x0, x[..., :-1]), dim=-1)) / 0.05
            reward = (progress - 0.1 * (actions * actions).sum(-1)).sum(-1)  # (K, M)
            returns = torch.empty(population * particles)
            returns[order] = reward.reshape(-1)
            best = returns.view(population, particles).mean(1).topk(elites).indices
            fit_std, fit_mean = torch.std_mean(candidates[best], 0, correction=0)
            mean = alpha * mean + (1 - alpha) * fit_mean
            std = alpha * std + (1 - alpha) * fit_std
        return mean

    obs, mean = torch.zeros(d), torch.zeros(horizon, a)

    def timed(decisions: int) -> float:
        block = max(decisions // 5, 1)
        times = []
        with torch.no_grad():
            for _ in range(block):
                decision(obs, mean)
            for _ in range(5):
                begin = time.perf_counter()
                for _ in range(block):
                    decision(obs, mean)
                times.append((time.perf_counter() - begin) / block)
        return 1000.0 * sorted(times)[2]

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description="The eager and compiled floor of a decision.")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (6)")
    args = parser.parse_args()
    if args.threads < 1 or args.rounds < 1:
        parser.error(f"--threads and --rounds must be >= 1, got {args.threads} and {args.rounds}")
    torch.set_num_threads(args.threads)
    sizes = dict(ensemble=5, hidden=64, layers=2, population=60, horizon=10, iterations=2)
    sizes |= dict(elites=6, alpha=0.1, particles=5)
    subjects = {"eager": floor_decisions(**sizes)}
    begin = time.perf_counter()
    subjects["compiled"] = floor_decisions(**sizes, compiled=True)
    subjects["compiled"](5)  # compiles
    print(f"compiled the rollout in {time.perf_counter() - begin:.0f} s")
    ms: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(args.rounds):
        for name, run in subjects.items():
            ms[name].append(run(100))
    for name, values in ms.items():
        shown = " ".join(f"{v:.1f}" for v in values)
        print(f"{name:<9} ms per decision: {shown}  (median {statistics.median(values):.1f})")
    gain = statistics.median(ms["eager"]) / statistics.median(ms["compiled"])
    print(f"compiled / eager speed: {gain:.2f}x")


if __name__ == "__main__":
    main()
