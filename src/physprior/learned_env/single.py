"""`LearnedDynamicsEnv`: one learned env, a `gymnasium.Env` (`physprior/Learned-v0`)."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from physprior.envs._validation import check_render_mode

from ._env_parts import (
    _check_state,
    _dynamics,
    _episode_length,
    _Frames,
    _InitialStates,
)
from .dynamics import ModelLike, _seed_members, to_numpy


# ---------------------------------------------------------------------------------- gymnasium env
class LearnedDynamicsEnv(gym.Env[NDArray[np.float64], NDArray[np.float32]]):
    """The base environment with a learned model as its transition.

    `LearnedDynamicsEnv(model, base_env_id, *, initial_states=None, bound=None,
    max_episode_steps=None, render_mode=None)`, also `gym.make("physprior/Learned-v0",
    model_path=DIR, base_env_id=ID)` (`model_path` and `model` are alternatives; without
    `base_env_id` the env the model was trained on, as recorded in its checkpoint, is used).

    ## Spaces

    The base env's: observation `Box(-inf, inf, (D,), float64)` (the model's state, computed
    in the model's dtype, float32 usually, and returned as float64) and its action Box.

    ## Transition, reward, termination

    `next_obs = model.step(obs, clip(action, low, high))` under `torch.no_grad()`; reward and
    termination are the base env's `reward_fn(obs, clipped action, next_obs)` and
    `termination_fn(next_obs)` (physics envs clip their action the same way; the Full envs'
    control cost then sees the clipped action where MuJoCo's would see the raw one).

    ## Starting state

    The base env's `reset` (`reset(seed=s)` starts from the very state the base env's
    `reset(seed=s)` does), or a row of `initial_states` `(M, D)` (a dataset's `obs`, say) drawn
    with `self.np_random`; `reset(options={"state": z})` starts from `z` `(D,)`.

    ## Episode end

    Terminates when the base `termination_fn` says so. Truncates after `max_episode_steps`
    (default: the base env's registered episode length) and when the model diverges (module
    docstring), with `info["model_diverged"] = True`; the observation is then the last finite
    state. The env truncates itself rather than through a `TimeLimit` registered with the id,
    because the episode length depends on the base env, known only at construction.

    ## Ensembles

    With an `ensemble` model, `member` picks what a step predicts: `"mean"` (default), `"random"`
    (a member drawn at every step, from a stream seeded by `reset(seed=...)`) or a member
    index; `info["model_disagreement"]` is then the members' spread about the step (their std
    per coordinate, averaged over the coordinates, in state units). `sample=True` draws each
    next state from a probabilistic model's (or member's) Gaussian, from the same stream.

    `info["model_diverged"]` is in every step's info. The base env's `dt`, `q_dim`,
    `state_layout`, `reward_fn` and `termination_fn` are exposed here too, so planners treat
    the learned env as they treat the real one; `dynamics` is the batched `ModelDynamics`.

    ## Example

    >>> import gymnasium as gym, physprior
    >>> from physprior.models import make
    >>> model = make("mlp", obs_dim=2, action_dim=1, dt=0.1)
    >>> env = gym.make("physprior/Learned-v0", model=model, base_env_id="physprior/MassSpring-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> obs.shape, obs.dtype, info["model_diverged"]
    ((2,), dtype('float64'), False)
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(
        self,
        model: ModelLike | None = None,
        base_env_id: str | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        initial_states: Any | None = None,
        bound: float | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        device: str | torch.device = "cpu",
        member: str | int = "mean",
        sample: bool = False,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        self.dynamics = _dynamics(
            model, model_path, base_env_id, bound=bound, device=device, member=member, sample=sample
        )
        base = self.dynamics.base_env
        self.base_env_id = self.dynamics.base_env_id
        self.observation_space = base.observation_space
        self.action_space = base.action_space
        self.max_episode_steps = _episode_length(max_episode_steps, self.dynamics)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / float(base.dt)))}
        self.dt: float = float(base.dt)
        self.q_dim: int = int(base.q_dim)
        self.state_layout: str = str(base.state_layout)
        self._initial = _InitialStates(self.dynamics, initial_states)
        self._obs_dtype = base.observation_space.dtype
        self._action_shape: tuple[int, ...] = tuple(base.action_space.shape)
        self._state: Tensor | None = None
        self._row = np.zeros(self.dynamics.obs_dim)
        self._steps = 0
        self._frames = _Frames(self.base_env_id, render_mode, "LearnedDynamicsEnv")

    # ------------------------------------------------------------------ contract
    def reward_fn(self, obs: Any, action: Any, next_obs: Any) -> Any:
        """The base env's `reward_fn` (batched, numpy or torch)."""
        return self.dynamics.base_env.reward_fn(obs, action, next_obs)

    def termination_fn(self, next_obs: Any) -> Any:
        """The base env's `termination_fn` (batched, numpy or torch)."""
        return self.dynamics.base_env.termination_fn(next_obs)

    @property
    def state(self) -> Tensor | None:
        """The current state `(D,)` in the model's dtype (None before `reset`)."""
        return None if self._state is None else self._state[0]

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        super().reset(seed=seed)
        dyn = self.dynamics
        _seed_members(dyn, self.np_random, seed)
        if options and "state" in options:
            z = _check_state(options["state"], (dyn.obs_dim,), "options['state']", dyn.dtype)
            self._state = torch.as_tensor(z[None], dtype=dyn.dtype, device=dyn.device)
        else:
            self._state = self._initial.draw(1, self.np_random, seed)
        # The state as float64 numbers, where the step's numpy work reads it.
        self._row = to_numpy(self._state[0]).astype(np.float64)
        self._steps = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple[NDArray[np.float64], float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("LearnedDynamicsEnv.step() called before reset()")
        a = _check_state(action, self._action_shape, "action", self.dynamics.dtype)
        dyn = self.dynamics
        self._state, self._row, reward, terminated, model_diverged = dyn.transition_one(
            self._state, self._row, a
        )
        self._steps += 1
        limit = self.max_episode_steps
        truncated = model_diverged or (limit is not None and self._steps >= limit)
        info: dict[str, Any] = {"model_diverged": model_diverged}
        if dyn.last_disagreement is not None:
            info["model_disagreement"] = float(dyn.last_disagreement[0])
        return self._obs(), reward, terminated, truncated, info

    def _obs(self) -> NDArray[np.float64]:
        # A copy: the caller may modify what it gets.
        return self._row.astype(self._obs_dtype)

    def render(self) -> Any:
        """An RGB frame of the current state, drawn by the base env (`render_mode="rgb_array"`)."""
        frames = self._frames.draw(None if self._state is None else self._state[:1])
        return None if frames is None else frames[0]

    def close(self) -> None:
        self._frames.close()
        self.dynamics.close()
        super().close()
