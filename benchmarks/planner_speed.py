"""Decision time of the CEM planner over learned HalfCheetah models, against the bare model.

`physprior.agents.mpc.CEMPlanner` (5 iterations of 400 candidate sequences of 30 steps,
40 elites) on `ModelDynamics(model, "physprior/HalfCheetahFull-v0")` plans one action per
call of `predict(obs)`, from observations of a random-action HalfCheetahFull episode. Models:
`node-so` (2 hidden layers of 128, 8 averaged-velocity substeps) and `mlp` (2x128), random
weights with normalisers fitted on HalfCheetahFull states (the speed does not depend on the
training).

The reference, measured in the same run: the bare model doing the same amount of model work
as one decision, `iterations` calls of `model.rollout(obs (400, 18), actions (400, 30, 6))`
under `torch.inference_mode()` (no reward, no divergence check, no sampling or elite
selection). The planner's time over it is its overhead; the bare rollout is also what the
decision time would be if the planner cost nothing beyond the model. Planner and reference
alternate in `--rounds` rounds (the order rotates), each timing `--decisions` decisions; the
table gives median milliseconds per decision. Threads: `--threads` torch intra-op threads.

The last subject, `node-so matmuls`, times only the matrix products of one node-so decision,
on preallocated tensors: the ceiling of any implementation built on torch's matrix products.

The machine's compute limit is measured in the same run (`_limits.py`: one thread's
`torch.addmm` rate on the model's hidden shape, times `--threads`), and every figure is also
printed as a fraction of the limit it implies (matrix-product FLOPs only).

    python benchmarks/planner_speed.py                    # about a minute
    python benchmarks/planner_speed.py --rounds 3 --decisions 3 --threads 1

Goal: a node-so CEM decision in under 100 ms at 2 threads (the model's compute limit, its
matrix products at full speed, is about 57 ms on these machines). Absolute times swing by up
to 3 times on shared machines; the ratio to the bare model is the stabler figure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from _limits import Limit, addmm_gflops, cores_check, mlp_flops, node_so_transition_flops
from learned_env_throughput import ENV_ID, fitted_model, halfcheetah_states

from physprior.agents.mpc import CEMConfig, CEMPlanner
from physprior.learned_env import ModelDynamics

GOAL_MS = 100.0


@dataclass
class Subject:
    """One timed subject: `run(k)` makes `k` decisions (or their model work)."""

    name: str
    run: Callable[[int], None]
    ms: list[float] = field(default_factory=list)


def planner_subject(
    name: str, dynamics: ModelDynamics, config: CEMConfig, obs: np.ndarray
) -> Subject:
    planner = CEMPlanner(dynamics, config)
    cursor = [0]

    def run(k: int) -> None:
        for _ in range(k):
            planner.predict(obs[cursor[0] % len(obs)])
            cursor[0] += 1

    return Subject(f"{name} CEM", run)


def bare_subject(name: str, dynamics: ModelDynamics, config: CEMConfig, obs: np.ndarray) -> Subject:
    model = dynamics.model
    gen = torch.Generator().manual_seed(0)
    p, h = config.population, config.horizon
    start = torch.as_tensor(obs[:1], dtype=torch.float32).expand(p, -1).contiguous()

    def run(k: int) -> None:
        with torch.inference_mode():
            for _ in range(k * config.iterations):
                actions = torch.rand(p, h, dynamics.action_dim, generator=gen) * 2 - 1
                model.rollout(start, actions)

    return Subject(f"{name} bare model", run)


def matmul_subject(config: CEMConfig) -> Subject:
    """The matrix products of one node-so CEM decision alone, on preallocated tensors.

    Per iteration and step of the horizon: the action term (6 -> 128) for the population, then
    8 substeps of 18 -> 128 -> 128 -> 18. No bias, activation, reward, sampling or elites: the
    ceiling of any implementation built on torch's matrix products.
    """
    b, d, a, h = config.population, 18, 6, 128
    shapes = [(b, a, h)] + 8 * [(b, d, h), (b, h, h), (b, h, d)]
    operands = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n in shapes]

    def run(decisions: int) -> None:
        for _ in range(decisions * config.iterations * config.horizon):
            for left, right, out in operands:
                torch.mm(left, right, out=out)

    return Subject("node-so matmuls", run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=5, help="decisions per timing (5)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--population", type=int, default=400)
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--elites", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = CEMConfig(
        horizon=args.horizon,
        population=args.population,
        iterations=args.iterations,
        elites=args.elites,
    )

    data = halfcheetah_states(2000, 0)
    obs = data[0][::10]
    subjects: list[Subject] = []
    for name in ("node-so", "mlp"):
        dynamics = ModelDynamics(fitted_model(name, data), ENV_ID)
        subjects += [planner_subject(name, dynamics, config, obs)]
        subjects += [bare_subject(name, dynamics, config, obs)]

    subjects.append(matmul_subject(config))

    for s in subjects:  # warm-up
        s.run(1)
    for r in range(args.rounds):
        for i in range(len(subjects)):
            s = subjects[(i + r) % len(subjects)]
            start = time.perf_counter()
            s.run(args.decisions)
            s.ms.append(1000 * (time.perf_counter() - start) / args.decisions)

    print(
        f"CEM: {args.iterations} iterations x population {args.population} x horizon "
        f"{args.horizon}, {args.elites} elites; {args.rounds} rounds of {args.decisions} "
        f"decisions, {args.threads} threads, torch {torch.__version__}"
    )
    print(f"{'subject':<20}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'x bare':>8}")
    med = {s.name: statistics.median(s.ms) for s in subjects}
    for s in subjects:
        bare = med[s.name.split()[0] + " bare model"]
        print(
            f"{s.name:<20}{med[s.name]:>11.1f}{min(s.ms):>9.1f}{max(s.ms):>9.1f}"
            f"{med[s.name] / bare:>8.2f}"
        )
    print(
        f"node-so matrix products alone (the ceiling of any torch implementation): "
        f"{med['node-so matmuls']:.1f} ms per decision"
    )
    node_so = med["node-so CEM"]
    verdict = "met" if node_so < GOAL_MS else "not met"
    print(f"goal: node-so CEM decision < {GOAL_MS:.0f} ms: {node_so:.1f} ms ({verdict})")
    # The machine's limit, measured now: a decision's model transitions at full speed.
    transitions = args.iterations * args.population * args.horizon
    gflops = addmm_gflops(args.population, 128, 128)
    per_transition = {
        "node-so": node_so_transition_flops(18, 6, 128, 2, 8),
        "mlp": 2 * 6 * 128 + mlp_flops(18, 128, 2, 18),
    }
    print(cores_check(args.population, 128, 128, args.threads, gflops))
    for name, flops in per_transition.items():
        limit = Limit(flops * transitions, gflops, args.threads)
        limit_ms = 1000 / limit.per_second
        print(
            f"{name}: {limit.describe('decision')}: {limit_ms:.1f} ms per decision; the CEM "
            f"decision at {limit_ms / med[name + ' CEM']:.1%} of it"
        )


if __name__ == "__main__":
    main()
