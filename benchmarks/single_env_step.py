"""Per-step cost of the single learned env against the real env and the bare model.

Subjects, one row at a time on one thread, random actions in the action box:

- `real env`: Gymnasium's `InvertedPendulum-v5` (`gym.make`, its wrappers included).
- `learned env`: `gym.make("physprior/Learned-v0", model=...)` over
  `physprior/InvertedPendulumFull-v0` with an `mlp` of 2 hidden layers of 128 (random
  weights, normalisers fitted on real states), wrappers included: the numpy action in, the
  model step, reward, termination, divergence check, the numpy observation out.
- `bare model`: `model.step(z, u)` on a `(1, 4)` tensor under `torch.inference_mode()`.
- `numpy row step`: the model's `numpy_row_step()` on one float64 row, looked up under
  `torch.no_grad()` as the env does (its weight check included): the model evaluation the
  learned env runs since it steps one row in numpy.

Subjects alternate in `--rounds` rounds of `--steps` steps each (episodes reset when they
end); the table gives the median microseconds per step. The learned env's overhead is its
time over the model evaluation it runs (`numpy row step`); its time over the torch step is
printed as well.

    python benchmarks/single_env_step.py            # about 20 seconds
    python benchmarks/single_env_step.py --breakdown   # and where the step's time goes

Goal (issue 16): the learned env's overhead over the model under 50 us per step.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import physprior  # noqa: F401  (registers the environments)
from physprior.learned_env import single as single_env
from physprior.models import make
from physprior.training import save_model

BASE = "physprior/InvertedPendulumFull-v0"
GOAL_US = 50.0


def real_states(n: int) -> np.ndarray:
    env = gym.make(BASE)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    states = []
    while len(states) < n:
        obs, _, terminated, truncated, _ = env.step(rng.uniform(-3, 3, 1).astype(np.float32))
        states.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(states)


def env_runner(env: gym.Env) -> Callable[[int], None]:
    rng = np.random.default_rng(1)
    env.reset(seed=0)

    def run(steps: int) -> None:
        actions = rng.uniform(-3, 3, (steps, 1)).astype(np.float32)
        for t in range(steps):
            _, _, terminated, truncated, _ = env.step(actions[t])
            if terminated or truncated:
                env.reset()

    return run


def breakdown(env: gym.Env, steps: int) -> None:
    """Time the pieces of `env`'s step inside the step loop, `steps` steps: each function the
    one-row step calls is wrapped with a timer on this env object (its own logic untouched);
    "rest" is the step's time outside them (clipping, conversions, gym's wrappers)."""
    unwrapped: Any = env.unwrapped
    dynamics, base = unwrapped.dynamics, unwrapped.dynamics.base_env
    seconds: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args)
            finally:
                seconds[name] += time.perf_counter() - start

        return wrapper

    lookup = dynamics._numpy_row_step

    def timed_lookup() -> Any:
        step = timed("weight check (numpy_row_step lookup)", lookup)()
        return None if step is None else timed("model (numpy row step)", step)

    dynamics._numpy_row_step = timed_lookup
    dynamics._bound_lists = timed("divergence bound", dynamics._bound_lists)
    base.reward_fn = timed("base env reward_fn", base.reward_fn)
    base.termination_fn = timed("base env termination_fn", base.termination_fn)
    check = single_env._check_state
    single_env._check_state = timed("action check", check)
    try:
        run = env_runner(env)
        start = time.perf_counter()
        run(steps)
        total = time.perf_counter() - start
    finally:
        single_env._check_state = check
    print(f"inside the learned env's step, {steps} steps (us per step):")
    for name, spent in seconds.items():
        print(f"  {name:<38}{1e6 * spent / steps:8.1f}")
    print(f"  {'rest':<38}{1e6 * (total - sum(seconds.values())) / steps:8.1f}")
    print(f"  {'whole step':<38}{1e6 * total / steps:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timing (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (5)")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the step's pieces inside the loop"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = gym.make(BASE).unwrapped
    torch.manual_seed(0)
    model = make("mlp", obs_dim=4, action_dim=1, q_dim=int(base.q_dim),
                 state_layout=str(base.state_layout), dt=float(base.dt), env_id=BASE)  # fmt: skip
    states = torch.as_tensor(real_states(2000), dtype=torch.float32)
    model.fit_normalization(torch.stack((states[:-1], states[1:]), 1), torch.zeros(1999, 1, 1))
    with tempfile.TemporaryDirectory() as folder:
        save_model(model, f"{folder}/model")
        learned = gym.make("physprior/Learned-v0", model=f"{folder}/model")
        inspected = gym.make("physprior/Learned-v0", model=f"{folder}/model")
    z, u = states[:1], torch.zeros(1, 1)

    def bare(steps: int) -> None:
        with torch.inference_mode():
            for _ in range(steps):
                model.step(z, u)

    row, action = z[0].double().numpy(), np.zeros(1)

    def numpy_row(steps: int) -> None:
        with torch.no_grad():
            for _ in range(steps):
                step = model.numpy_row_step()
                assert step is not None, "the mlp has a one-row numpy step"
                step(row, action)

    subjects = {
        "real env": env_runner(gym.make("InvertedPendulum-v5")),
        "learned env": env_runner(learned),
        "bare model": bare,
        "numpy row step": numpy_row,
    }
    us: dict[str, list[float]] = {name: [] for name in subjects}
    for run in subjects.values():
        run(100)  # warm-up
    names = list(subjects)
    for r in range(args.rounds):
        for i in range(len(names)):
            name = names[(i + r) % len(names)]
            start = time.perf_counter()
            subjects[name](args.steps)
            us[name].append(1e6 * (time.perf_counter() - start) / args.steps)
    med = {name: statistics.median(values) for name, values in us.items()}
    print(f"one thread, {args.rounds} rounds of {args.steps} steps, torch {torch.__version__}")
    print(f"{'subject':<16}{'us per step':>12}{'steps/s':>10}")
    for name in names:
        print(f"{name:<16}{med[name]:>12.1f}{1e6 / med[name]:>10,.0f}")
    overhead = med["learned env"] - med["numpy row step"]
    verdict = "met" if overhead < GOAL_US else "not met"
    print(f"learned env over the bare torch model: {med['learned env'] - med['bare model']:.1f} us")
    print(f"learned env over its numpy row step: {overhead:.1f} us per step")
    print(f"goal: overhead < {GOAL_US:.0f} us: {overhead:.1f} us ({verdict})")
    if args.breakdown:
        breakdown(inspected, args.steps * args.rounds)


if __name__ == "__main__":
    main()
