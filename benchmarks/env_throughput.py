"""Steps per second of physprior's environments, and the cost of the full-state MuJoCo variants.

Every physics environment (`physprior.envs.PHYSICS_ENVS`) is stepped with random actions. Every
full-state MuJoCo variant is stepped next to the Gymnasium v5 environment it is built on and
next to a second copy of that v5 environment (a control: two identical envs differ only by
machine noise), all three with the same seed and the same actions, so they follow one trajectory
and reset at the same steps. The three are interleaved in chunks of `CHUNK` steps, rotating
which goes first, so that machine noise falls on all alike; each repeat gives one paired time
ratio Full/v5 (and v5 copy/v5), and the table reports medians over repeats. Time is the CPU time
of this process (`time.process_time`), which other processes on a shared machine disturb less
than wall time; it covers `step` and the resets at episode ends (identical for Full and v5), not
construction or warm-up steps. Environments are built with `gymnasium.make`, wrappers included,
as users get them.

    python benchmarks/env_throughput.py                  # everything, about a minute
    python benchmarks/env_throughput.py --envs Hopper,Ant --steps 2000 --repeats 15

Goal: the Full variants cost under 10% more time per step than v5.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import mujoco
import numpy as np

import physprior.envs as penvs

WARMUP_STEPS = 20
CHUNK = 50


@dataclass
class Subject:
    """One environment under test: its id, a constructor, and its measured rates (steps/s)."""

    env_id: str
    make: Callable[[], gym.Env]
    env: gym.Env | None = None
    actions: np.ndarray | None = None
    rates: list[float] = field(default_factory=list)


def random_actions(space: gym.spaces.Box, steps: int, seed: int) -> np.ndarray:
    """`steps` uniform float32 actions in `space` (as an SB3 policy hands them over)."""
    rng = np.random.default_rng(seed)
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    return rng.uniform(low, high, (steps, *space.shape)).astype(np.float32)


def run(env: gym.Env, actions: np.ndarray) -> float:
    """Step through `actions` from the current state, resetting at episode ends; CPU seconds."""
    step, reset = env.step, env.reset
    start = time.process_time()
    for action in actions:
        _, _, terminated, truncated, _ = step(action)
        if terminated or truncated:
            reset()
    return time.process_time() - start


def interleaved(subjects: Sequence[Subject], seed: int, first: int) -> list[float]:
    """Steps per CPU second of each subject, interleaved chunk by chunk on one trajectory.

    All subjects step through the first subject's actions from `reset(seed=seed)`; chunk `i`
    starts with subject `(i + first) % len(subjects)`.
    """
    actions = subjects[0].actions
    assert actions is not None
    for s in subjects:
        s.env.reset(seed=seed)  # type: ignore[union-attr]
    seconds = [0.0] * len(subjects)
    for i, start in enumerate(range(0, len(actions), CHUNK)):
        chunk = actions[start : start + CHUNK]
        for k in range(len(subjects)):
            j = (i + first + k) % len(subjects)
            seconds[j] += run(subjects[j].env, chunk)  # type: ignore[arg-type]
    return [len(actions) / t for t in seconds]


def prepare(subject: Subject, steps: int, seed: int) -> str | None:
    """Build and warm up the env; the reason it cannot be benchmarked, or None."""
    try:
        env = subject.make()
        actions = random_actions(env.action_space, steps, seed)  # type: ignore[arg-type]
        env.reset(seed=seed)
        run(env, actions[:WARMUP_STEPS])
    except Exception as err:  # envs written by others may be unfinished: note and go on
        return f"{type(err).__name__}: {err}"
    subject.env, subject.actions = env, actions
    return None


def selected(names: Sequence[str], wanted: Sequence[str] | None) -> bool:
    """Whether any of `names` contains any of the `--envs` filters (case-insensitive)."""
    if not wanted:
        return True
    return any(w.lower() in n.lower() for n in names for w in wanted)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved repeats (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of resets and actions")
    parser.add_argument(
        "--envs",
        type=lambda s: [x for x in s.split(",") if x],
        default=None,
        help="comma-separated substrings of env names to run (e.g. Hopper,Mass); default all",
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        parser.error("--steps and --repeats must be positive")

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, gymnasium "
        f"{gym.__version__}, mujoco {mujoco.__version__}, {platform.machine()}, "
        f"{platform.platform()}"
    )
    print(f"{args.steps} steps x {args.repeats} repeats, random actions, seed {args.seed}\n")

    physics = [
        Subject(e.id, lambda i=e.id: gym.make(i))
        for e in penvs.PHYSICS_ENVS
        if selected([e.id], args.envs)
    ]
    # (v5, Full, second v5 as a control) per full-state variant.
    triples: list[tuple[Subject, Subject, Subject]] = []
    for entry in penvs.MUJOCO_FULL_ENVS:
        base_id = f"{entry.name.removesuffix('Full')}-v5"
        if selected([entry.id, base_id], args.envs):
            triples.append(
                (
                    Subject(base_id, lambda i=base_id: gym.make(i)),
                    Subject(entry.id, lambda i=entry.id: gym.make(i)),
                    Subject(base_id, lambda i=base_id: gym.make(i)),
                )
            )

    noted = False
    for subject in [*physics, *(s for triple in triples for s in triple)]:
        reason = prepare(subject, args.steps, args.seed)
        if reason is not None:
            noted = True
            print(f"note: skipping {subject.env_id}: {reason}")
    physics = [s for s in physics if s.env is not None]
    triples = [t for t in triples if all(s.env is not None for s in t)]
    if noted:
        print()

    ratios: dict[str, list[float]] = {}
    controls: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        for subject in physics:
            subject.env.reset(seed=args.seed)  # type: ignore[union-attr]
            subject.rates.append(args.steps / run(subject.env, subject.actions))  # type: ignore[arg-type]
        for triple in triples:
            # The Full variants keep v5's action spaces: the same actions drive all three.
            rates = interleaved(triple, args.seed, repeat)
            for subject, rate in zip(triple, rates, strict=True):
                subject.rates.append(rate)
            v5, full, _ = triple
            ratios.setdefault(full.env_id, []).append(rates[0] / rates[1])  # time: Full / v5
            controls.setdefault(full.env_id, []).append(rates[0] / rates[2])  # time: v5' / v5

    if physics:
        print(f"{'physics env':<34} {'steps/s':>10} {'min':>10} {'max':>10}")
        for s in physics:
            print(
                f"{s.env_id:<34} {statistics.median(s.rates):>10,.0f} "
                f"{min(s.rates):>10,.0f} {max(s.rates):>10,.0f}"
            )
        print()
    if triples:
        print(
            f"{'full-state env':<34} {'v5 steps/s':>11} {'Full steps/s':>13} "
            f"{'Full/v5':>8} {'overhead':>9} {'v5 vs v5':>9}"
        )
        for v5, full, _ in triples:
            overhead = statistics.median(ratios[full.env_id]) - 1
            control = statistics.median(controls[full.env_id]) - 1
            print(
                f"{full.env_id:<34} {statistics.median(v5.rates):>11,.0f} "
                f"{statistics.median(full.rates):>13,.0f} {1 / (1 + overhead):>8.3f} "
                f"{100 * overhead:>+8.1f}% {100 * control:>+8.1f}%"
            )
        print(
            "\nsteps/s: CPU-time medians over repeats. overhead: extra time per step of the Full "
            "variant over v5,\nthe median of per-repeat paired ratios (goal: under 10%). "
            "v5 vs v5: the same measured between two\ncopies of the v5 env, i.e. the noise floor."
        )
    for subject in [*physics, *(s for triple in triples for s in triple)]:
        subject.env.close()  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main())
