"""What besides SAC's weights decides a collection's next rows: kept at every flush, restored
on resume, so that a resumed SAC collection records exactly the rows of an uninterrupted one.

At a flush point (the start of an SB3 rollout, after the previous step's gradient update) the
rest of SAC's future is decided by:

- the random number generators: torch's (the policy's action samples), numpy's global one
  (SB3's replay-buffer batches), Python's `random`, the action space's (the random actions
  before `learning_starts`) and the env's (its resets);
- where the env stands: its state (the next observation), how many steps of its episode are
  done (the time limit's counter) and, on MuJoCo, the constraint solver's warm start;
- SB3's `_last_obs` and `_last_episode_starts`;
- the replay buffer: refilled from the dataset in SB3's own circular layout, with the actions
  exactly as SB3 stored them (rescaling the dataset's env-unit actions can differ in the last
  float32 bit).

`capture` returns these as tensors and a JSON header for the agent-state file; `restore` puts
them back into a fresh SAC whose env and buffer `_run_sac` has set up.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

if TYPE_CHECKING:
    from stable_baselines3 import SAC

#: Prefix of the run-state tensors in the agent-state file.
PREFIX = "run."


def _gym_env(model: SAC) -> gym.Env[Any, Any]:
    """The (wrapped) gym env inside SAC's one-env `DummyVecEnv`."""
    vec = model.get_env()
    assert vec is not None and vec.num_envs == 1
    return vec.envs[0]  # type: ignore[attr-defined]


def _warmstart(env: gym.Env[Any, Any]) -> np.ndarray | None:
    data = getattr(env.unwrapped, "data", None)
    return getattr(data, "qacc_warmstart", None)  # MuJoCo envs only


def _filled(model: SAC) -> int:
    buffer = model.replay_buffer
    assert buffer is not None
    return int(buffer.buffer_size) if buffer.full else int(buffer.pos)


def capture(model: SAC) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The run state of `model` now: tensors (keys start with `PREFIX`) and a JSON header."""
    env = _gym_env(model)
    buffer = model.replay_buffer
    assert buffer is not None and model._last_obs is not None
    # SB3 samples its batches from the legacy global generator, so that is the one to keep.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    tensors = {
        PREFIX + "torch_rng": torch.get_rng_state(),
        PREFIX + "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        PREFIX + "last_obs": torch.from_numpy(np.array(model._last_obs, dtype=np.float64)),
        PREFIX + "buffer_actions": torch.from_numpy(buffer.actions[: _filled(model)].copy()),
    }
    warmstart = _warmstart(env)
    if warmstart is not None:
        tensors[PREFIX + "warmstart"] = torch.from_numpy(warmstart.copy())
    header = {
        "numpy": [name, int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
        "action_space": model.action_space.np_random.bit_generator.state,
        "env": env.unwrapped.np_random.bit_generator.state,
        "last_episode_start": bool(np.asarray(model._last_episode_starts)[0]),
        "buffer": [int(buffer.pos), bool(buffer.full)],
    }
    return tensors, header


def open_steps(model: SAC) -> int:
    """Steps taken in the episode in progress: the time limit's counter (0 without one)."""
    wrapper: Any = _gym_env(model)
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, gym.wrappers.TimeLimit):
            return int(wrapper._elapsed_steps or 0)
        wrapper = wrapper.env
    return 0


def set_episode_steps(env: gym.Env[Any, Any], steps: int) -> None:
    """Set the time limit's counter of `env` (its `TimeLimit` wrappers) to `steps` taken."""
    wrapper: Any = env
    while isinstance(wrapper, gym.Wrapper):
        if isinstance(wrapper, gym.wrappers.TimeLimit):
            time_limit: Any = wrapper  # gymnasium annotates the counter as None
            time_limit._elapsed_steps = steps
        wrapper = wrapper.env


def restore(
    model: SAC, tensors: dict[str, torch.Tensor], header: dict[str, Any], open_steps: int
) -> None:
    """Put a `capture` back into `model`, whose buffer is already refilled from the dataset.

    `open_steps`: the steps of the episode in progress (0 when the next step starts one).
    ValueError when the state does not fit (another buffer layout or env).
    """
    env = _gym_env(model)
    buffer = model.replay_buffer
    assert buffer is not None
    if [int(buffer.pos), bool(buffer.full)] != header["buffer"]:
        raise ValueError(
            f"the replay buffer refilled from the dataset is at {[buffer.pos, buffer.full]}, "
            f"the saved run state at {header['buffer']}"
        )
    last_obs = tensors[PREFIX + "last_obs"].numpy()
    # The env where it stood: its state, its episode's step count, MuJoCo's warm start.
    env.reset(options={"state": last_obs[0]})
    set_episode_steps(env, open_steps)
    warmstart = _warmstart(env)
    if warmstart is not None:
        warmstart[:] = tensors[PREFIX + "warmstart"].numpy()
    actions = tensors[PREFIX + "buffer_actions"].numpy()
    buffer.actions[: len(actions)] = actions
    model._last_obs = last_obs.copy()
    model._last_episode_starts = np.array([header["last_episode_start"]])
    # The generators last: the reset above must not move them.
    torch.set_rng_state(tensors[PREFIX + "torch_rng"])
    name, pos, has_gauss, cached = header["numpy"]
    keys = tensors[PREFIX + "numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((name, keys, int(pos), int(has_gauss), float(cached)))  # noqa: NPY002
    version, internal, gauss = header["python"]
    random.setstate((version, tuple(internal), gauss))
    model.action_space.np_random.bit_generator.state = header["action_space"]
    env.unwrapped.np_random.bit_generator.state = header["env"]
    # SB3 seeded the vec env at construction for its first reset, which a resumed run never
    # makes: without clearing it, the next episode would start from that seed.
    vec = model.get_env()
    vec._reset_seeds()  # type: ignore[union-attr]
