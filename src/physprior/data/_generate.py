"""The papers' trajectory sets: `n` trajectories of a given length from any physics env."""

from __future__ import annotations

import json
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from physprior._progress import progress_bar

from ._dataset import DatasetMeta, TransitionDataset
from ._envinfo import env_info

ActionMode = Literal["zero", "random"]

#: Sets of at least this many transitions show a progress bar when `progress` is None.
_BAR_STEPS = 10_000


def generate_trajectories(
    env_id: str,
    n_trajectories: int,
    length: int,
    *,
    actions: ActionMode = "zero",
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> TransitionDataset:
    """Roll out `n_trajectories` episodes of `length` states (`length - 1` transitions) each.

    The env is `gym.make(env_id, **env_kwargs).unwrapped`: no TimeLimit, so every episode runs
    its full length unless the env itself terminates (then it is shorter and its last row is
    `terminated`). A full-length episode's last row is marked `truncated`, as a time limit
    would, so every episode ends with one of the two flags.

    Initial states come from the env's own distribution: `reset(seed=seed)` for the first
    episode and `reset()` for the next ones, continuing the env's `np_random` stream.
    `actions="zero"` gives the autonomous system of the papers; `"random"` draws each action
    uniformly from the (bounded) action space with a generator spawned from `seed`. Rewards
    and flags are the env's. The result depends only on the arguments.

    Returns a dataset whose `meta` records the env id, `dt`, `q_dim`, `state_layout`, the agent
    (`"zero"` or `"random"`), the seed, the number of transitions (`steps`), and in `extra`
    `n_trajectories`, `length` and `env_kwargs`. `progress` shows a tqdm bar over episodes
    (None: only for sets of 10,000 transitions or more).
    """
    if actions not in ("zero", "random"):
        raise ValueError(f"actions must be 'zero' or 'random', got {actions!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    for value, name, least in ((n_trajectories, "n_trajectories", 1), (length, "length", 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    kwargs = dict(env_kwargs or {})
    try:
        json.dumps(kwargs)
    except TypeError as err:
        raise TypeError(f"env_kwargs must be JSON-serialisable for meta: {err}") from None

    wrapped = gym.make(env_id, **kwargs)
    try:
        info = env_info(wrapped)
        env = wrapped.unwrapped
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"{env_id} has a {type(space).__name__} action space, not a Box")
        if actions == "random" and not np.all(np.isfinite(space.low) & np.isfinite(space.high)):
            raise ValueError(f"{env_id}'s action space is unbounded: random actions need bounds")
        action_dim = int(np.prod(space.shape))
        # A child of the seed, so that the action stream differs from the env's own stream.
        action_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        zero = np.zeros(space.shape, dtype=space.dtype)
        show = progress if progress is not None else n_trajectories * (length - 1) >= _BAR_STEPS
        episodes: list[dict[str, np.ndarray]] = []
        for k in progress_bar(range(n_trajectories), desc=env_id, unit="episode", enabled=show):
            obs, _ = env.reset(seed=int(seed) if k == 0 else None)
            episodes.append(_rollout(env, obs, length, actions, action_rng, zero))
    finally:
        wrapped.close()

    sizes = [len(e["rewards"]) for e in episodes]
    rows = int(sum(sizes))
    return TransitionDataset(
        obs=np.concatenate([e["obs"] for e in episodes]),
        actions=np.concatenate([e["actions"] for e in episodes]).reshape(rows, action_dim),
        next_obs=np.concatenate([e["next_obs"] for e in episodes]),
        rewards=np.concatenate([e["rewards"] for e in episodes]),
        terminated=np.concatenate([e["terminated"] for e in episodes]),
        truncated=np.concatenate([e["truncated"] for e in episodes]),
        episode=np.repeat(np.arange(n_trajectories, dtype=np.int64), sizes),
        meta=DatasetMeta(
            env_id=info.env_id,
            dt=info.dt,
            q_dim=info.q_dim,
            state_layout=info.state_layout,
            agent=actions,
            seed=int(seed),
            steps=rows,
            extra={
                "n_trajectories": int(n_trajectories),
                "length": int(length),
                "env_kwargs": kwargs,
            },
        ),
    )


def _rollout(
    env: gym.Env[Any, Any],
    obs: np.ndarray,
    length: int,
    actions: ActionMode,
    rng: np.random.Generator,
    zero: np.ndarray,
) -> dict[str, np.ndarray]:
    """One episode of up to `length - 1` transitions from `obs` (the state after reset)."""
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    states = [np.asarray(obs, dtype=np.float64)]
    taken, rewards, terminated = [], [], False
    for _ in range(length - 1):
        if actions == "zero":
            action = zero
        else:
            # Cast before stepping, so the stored action is exactly the one the env received.
            action = rng.uniform(space.low, space.high).astype(space.dtype)
        next_obs, reward, terminated, _, _ = env.step(action)
        states.append(np.asarray(next_obs, dtype=np.float64))
        taken.append(np.asarray(action, dtype=np.float64))
        rewards.append(float(reward))
        if terminated:
            break
    n = len(rewards)
    trajectory = np.stack(states)
    ends = np.zeros(n, dtype=bool)
    ends[-1] = True
    return {
        "obs": trajectory[:-1],
        "next_obs": trajectory[1:],
        "actions": np.stack(taken),
        "rewards": np.asarray(rewards, dtype=np.float64),
        "terminated": ends & bool(terminated),
        "truncated": ends & (not terminated),
    }
