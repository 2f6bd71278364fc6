"""What recording costs a SAC run: `physprior collect` against plain Stable-Baselines3 SAC.

Each repeat runs, in alternating order, the same SAC twice with the same seed and settings
(`default_sac_kwargs(steps)`, one torch thread):

- plain: `stable_baselines3.SAC("MlpPolicy", gym.make(env_id), seed=...)` and `learn(steps)`,
  SB3's own wrapping (Monitor, DummyVecEnv), nothing recorded;
- collect: `physprior.agents.collect.collect(...)`: the same SAC plus the exact-reward wrapper,
  the recording callback, a flush (dataset and agent state) every `steps // 4` steps, and the
  final dataset, agent state and SB3 `.zip` writes.

Both follow one trajectory (checked: the recorded observations equal the plain run's replay
buffer), so the only difference is the recording. Time is this process's CPU time
(`time.process_time`, which other processes on a shared machine disturb less than wall time)
and wall time, from SAC's construction to the end; the ratio collect/plain is reported per
repeat and as the median. On a busy machine the run-to-run noise of those ratios is larger
than the overhead, so the time spent inside the recording callback (flushes included) is also
measured directly and reported per step and as a fraction of the collect run's CPU time.

    python benchmarks/collect_overhead.py                      # InvertedPendulumFull, ~2 min
    python benchmarks/collect_overhead.py --env physprior/HopperFull-v0 --steps 3000 --repeats 5

Goal: recording adds under 5% (ratio < 1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC

import physprior  # noqa: F401  (registers the environments)
from physprior.agents.collect import CollectConfig, collect
from physprior.agents.collect import _sac as _collect_sac
from physprior.agents.collect._sac import default_sac_kwargs

#: Seconds spent inside the recording callback since the last reset.
_SPENT = [0.0]
_ON_STEP = _collect_sac.RecordCallback._on_step


def _timed_on_step(self: _collect_sac.RecordCallback) -> bool:
    start = time.perf_counter()
    keep_going = _ON_STEP(self)
    _SPENT[0] += time.perf_counter() - start
    return keep_going


_collect_sac.RecordCallback._on_step = _timed_on_step


def plain(
    env_id: str, steps: int, seed: int, kwargs: dict[str, object]
) -> tuple[float, float, SAC]:
    """Plain SB3 SAC for `steps` steps; (CPU seconds, wall seconds, the model)."""
    cpu, wall = time.process_time(), time.perf_counter()
    model = SAC("MlpPolicy", gym.make(env_id), seed=seed, verbose=0, **kwargs)  # type: ignore[arg-type]
    model.learn(steps)
    return time.process_time() - cpu, time.perf_counter() - wall, model


def recorded(
    env_id: str, steps: int, seed: int, kwargs: dict[str, object], out: Path
) -> tuple[float, float, np.ndarray]:
    """`collect` with the same SAC; (CPU seconds, wall seconds, the recorded observations)."""
    for stale in out.parent.glob(f"{out.stem}*"):
        stale.unlink()
    config = CollectConfig(
        env_id,
        steps,
        str(out),
        seed=seed,
        flush_every=max(1, steps // 4),
        progress=False,
        sac_kwargs=kwargs,
    )
    _SPENT[0] = 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    result = collect(config)
    return time.process_time() - cpu, time.perf_counter() - wall, result.dataset.obs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="physprior/InvertedPendulumFull-v0")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--learning-starts", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)  # as collect does (CollectConfig.torch_threads)
    kwargs = {**default_sac_kwargs(args.steps), "learning_starts": args.learning_starts}
    print(
        f"{args.env}: {args.steps} steps, learning_starts {args.learning_starts}, "
        f"net {kwargs['policy_kwargs']}, batch {kwargs['batch_size']}, seed {args.seed}"
    )
    ratios_cpu, ratios_wall, shares = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.npz"
        for r in range(args.repeats):
            if r % 2 == 0:
                p_cpu, p_wall, model = plain(args.env, args.steps, args.seed, kwargs)
                c_cpu, c_wall, obs = recorded(args.env, args.steps, args.seed, kwargs, out)
            else:
                c_cpu, c_wall, obs = recorded(args.env, args.steps, args.seed, kwargs, out)
                p_cpu, p_wall, model = plain(args.env, args.steps, args.seed, kwargs)
            buffer = model.replay_buffer
            assert buffer is not None
            same = np.array_equal(buffer.observations[: args.steps, 0], obs)
            ratios_cpu.append(c_cpu / p_cpu)
            ratios_wall.append(c_wall / p_wall)
            shares.append(_SPENT[0] / c_cpu)
            print(
                f"repeat {r}: plain {p_cpu:6.2f} s CPU {p_wall:6.2f} s wall | collect "
                f"{c_cpu:6.2f} s CPU {c_wall:6.2f} s wall | ratio CPU {ratios_cpu[-1]:.3f} "
                f"wall {ratios_wall[-1]:.3f} | callback {1e6 * _SPENT[0] / args.steps:.1f} us/step "
                f"({100 * shares[-1]:.2f}% of collect's CPU) | same trajectory: {same}"
            )
    print(
        f"median ratio collect/plain: CPU {statistics.median(ratios_cpu):.3f}, "
        f"wall {statistics.median(ratios_wall):.3f}; inside the callback: "
        f"{100 * statistics.median(shares):.2f}% (goal: under 5%)"
    )


if __name__ == "__main__":
    main()
