"""Adapters from foreign formats to `TransitionDataset`: a Stable-Baselines3 `ReplayBuffer`.

What SB3 2.x stores (`common/buffers.py`, `common/off_policy_algorithm.py`), and what is done
with it here:

- Arrays are `(buffer_size, n_envs, ...)`, written circularly at row `pos`; once `full`, the
  oldest row is `pos`. Each env index is its own stream of time-ordered rows.
- Actions of a Box space are stored *scaled* to [-1, 1] (`_sample_action`: `buffer_action =
  policy.scale_action(action)`), whatever the policy; the env received
  `policy.unscale_action(buffer_action)`. They are mapped back with the same expression,
  `low + 0.5 * (a + 1) * (high - low)` in the action space's dtype, so a float32 Box gives the
  exact action the env received.
- `next_observations[i]` is the true last observation at an episode end (SB3 substitutes the
  vec env's `terminal_observation`). With `optimize_memory_usage` there is no such array: the
  next observation is the following row of `observations`, and at an episode end that row is
  overwritten by the next episode's first observation, so an episode's final transition is lost
  (dropped here, except for the newest row, whose next observation is intact); the episode then
  ends `truncated`.
- `dones` end episodes. `timeouts` (with `handle_timeout_termination`, SB3's default) mark
  time-limit ends: `done & timeout` is `truncated`, `done & ~timeout` is `terminated`. Without
  timeouts, the env's `termination_fn(next_obs)` tells a terminal state from a time limit.
- Rows that do not chain (`next_obs[i] != obs[i + 1]` without `done`, e.g. `learn()` called
  again with `reset_num_timesteps=True`, which resets the env) end an episode as `truncated`.
- The newest, unfinished episode of each stream is kept and ends `truncated`; once the buffer
  has wrapped, the oldest episode of each stream starts mid-way. Either way every episode of
  the dataset ends with `terminated` or `truncated`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from ._dataset import DatasetMeta, TransitionDataset
from ._envinfo import env_info

if TYPE_CHECKING:
    from stable_baselines3.common.buffers import ReplayBuffer


def from_replay_buffer(
    buffer: ReplayBuffer,
    env: gym.Env[Any, Any] | str,
    *,
    agent: str = "sac",
    seed: int | None = None,
) -> TransitionDataset:
    """The transitions in an SB3 `ReplayBuffer` as a dataset in the env's own units.

    Args:
        buffer: the buffer of an off-policy SB3 algorithm (`model.replay_buffer`), Box
            observations and actions.
        env: the environment the buffer was filled from (or its id), a physprior env: it gives
            the action bounds, `meta` (`dt`, `q_dim`, `state_layout`) and `termination_fn`.
            For a vec env pass one of its envs (e.g. `vec_env.envs[0]`).
        agent, seed: recorded in `meta` (`agent`, `seed`).

    Rows are grouped by env index (each index a stream), oldest first; episode ids are
    0, 1, ... over (env index, episode). See the module docstring for how flags, the circular
    layout and `optimize_memory_usage` are read. `meta.steps` is the number of rows kept;
    `meta.extra` records `n_envs` and `dropped_rows`.
    """
    # Imported here: SB3 is a dependency, but loading it costs seconds that only this needs.
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

    if isinstance(buffer, DictReplayBuffer) or not isinstance(buffer, ReplayBuffer):
        raise TypeError(
            f"from_replay_buffer takes an SB3 ReplayBuffer with Box observations, got "
            f"{type(buffer).__name__}"
        )
    if isinstance(env, str):
        made = gym.make(env)
        try:
            return _convert(buffer, made, agent, seed)
        finally:
            made.close()
    return _convert(buffer, env, agent, seed)


def _convert(
    buffer: ReplayBuffer, env: gym.Env[Any, Any], agent: str, seed: int | None
) -> TransitionDataset:
    info = env_info(env)
    low, high = _action_bounds(buffer, env)
    obs_shape = env.observation_space.shape
    if tuple(buffer.obs_shape) != tuple(obs_shape or ()) or len(buffer.obs_shape) != 1:
        raise ValueError(
            f"the buffer holds observations of shape {buffer.obs_shape}; {info.env_id} "
            f"observes {obs_shape}"
        )
    order, next_index = _time_order(buffer)
    if order.size == 0:
        raise ValueError("the replay buffer is empty")
    termination_fn = env.unwrapped.termination_fn  # type: ignore[attr-defined]
    streams = [
        _stream(buffer, j, order, next_index, low, high, termination_fn)
        for j in range(buffer.n_envs)
    ]
    columns = {
        name: np.concatenate([s[name] for s in streams])
        for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated")
    }
    # Every stream's last row carries a flag, so ids never run on from one stream to the next.
    ends = columns["terminated"] | columns["truncated"]
    episode = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
    rows = int(episode.shape[0])
    dropped = buffer.n_envs * int(order.size) - rows
    return TransitionDataset(
        **columns,
        episode=episode,
        meta=DatasetMeta(
            env_id=info.env_id,
            dt=info.dt,
            q_dim=info.q_dim,
            state_layout=info.state_layout,
            agent=agent,
            seed=seed,
            steps=rows,
            extra={"n_envs": int(buffer.n_envs), "dropped_rows": dropped},
        ),
    )


def _action_bounds(
    buffer: ReplayBuffer, env: gym.Env[Any, Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """The Box bounds SB3 scaled with, checked against the env's action space."""
    space, own = buffer.action_space, env.action_space
    if not isinstance(space, gym.spaces.Box) or not isinstance(own, gym.spaces.Box):
        raise TypeError(
            f"only Box action spaces are supported, got {type(space).__name__} in the buffer "
            f"and {type(own).__name__} in the env"
        )
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError("the buffer's action space is unbounded: SB3 cannot have scaled it")
    if space.shape != own.shape or not (
        np.array_equal(space.low, own.low) and np.array_equal(space.high, own.high)
    ):
        raise ValueError(
            f"the buffer's action space {space} differs from the env's {own}: wrong env?"
        )
    return space.low.reshape(-1), space.high.reshape(-1)


def _time_order(buffer: ReplayBuffer) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Buffer rows holding transitions, oldest first, and the rows of their next observations.

    With `optimize_memory_usage`, row `pos` of a full buffer holds the newest next observation
    and an old action: it is no transition (SB3's sampler skips it too).
    """
    size, pos = int(buffer.buffer_size), int(buffer.pos)
    if buffer.optimize_memory_usage:
        order = (pos + 1 + np.arange(size - 1)) % size if buffer.full else np.arange(pos)
        return order.astype(np.int64), ((order + 1) % size).astype(np.int64)
    if buffer.full:
        order = np.concatenate([np.arange(pos, size), np.arange(pos)])
    else:
        order = np.arange(pos)
    return order.astype(np.int64), order.astype(np.int64)


def _stream(
    buffer: ReplayBuffer,
    j: int,
    order: NDArray[np.int64],
    next_index: NDArray[np.int64],
    low: NDArray[Any],
    high: NDArray[Any],
    termination_fn: Any,
) -> dict[str, NDArray[Any]]:
    """The rows of env index `j`, in time order, with episode-end flags."""
    obs = buffer.observations[order, j]
    if buffer.optimize_memory_usage:
        next_obs = buffer.observations[next_index, j]
    else:
        next_obs = buffer.next_observations[order, j]
    done = buffer.dones[order, j] > 0
    timeout = buffer.timeouts[order, j] > 0
    # SB3's own expression for `unscale_action`, in the space's dtype: bit-for-bit what the env
    # received.
    scaled = buffer.actions[order, j].astype(low.dtype, copy=False)
    actions = (low + (0.5 * (scaled + 1.0) * (high - low))).astype(np.float64)
    rewards = buffer.rewards[order, j].astype(np.float64)

    keep = np.ones(order.size, dtype=bool)
    if buffer.optimize_memory_usage:
        # An episode's final next observation was overwritten by the next episode's start.
        keep[:-1] = ~done[:-1]
    obs, next_obs, actions, rewards = obs[keep], next_obs[keep], actions[keep], rewards[keep]
    done, timeout = done[keep], timeout[keep]

    if buffer.handle_timeout_termination:
        terminated = done & ~timeout
    else:
        terminated = np.zeros_like(done)
        if done.any():
            terminated[done] = np.asarray(termination_fn(next_obs[done]), dtype=bool)
    truncated = done & ~terminated
    n = obs.shape[0]
    if n:
        broken = np.zeros(n, dtype=bool)
        broken[:-1] = ~np.all(next_obs[:-1] == obs[1:], axis=1)
        broken[-1] = True  # the newest episode is unfinished (or already flagged)
        truncated |= broken & ~done
    return {
        "obs": obs,
        "actions": actions,
        "next_obs": next_obs,
        "rewards": rewards,
        "terminated": terminated,
        "truncated": truncated,
    }
