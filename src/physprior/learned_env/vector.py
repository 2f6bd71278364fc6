"""`LearnedVectorEnv`: N learned envs stepped in one model call, a `gymnasium.vector.VectorEnv`."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
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


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """`mode` as an `AutoresetMode` (its value, e.g. "NextStep", is accepted too)."""
    if isinstance(mode, AutoresetMode) and mode is not AutoresetMode.DISABLED:
        return mode
    allowed = (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP)
    for candidate in allowed:
        if mode == candidate.value:
            return candidate
    raise ValueError(
        f"autoreset_mode must be one of {[m.value for m in allowed]} (AutoresetMode members), "
        f"got {mode!r}"
    )


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(getattr(x, "shape", np.shape(x)))


# ---------------------------------------------------------------------------------- vector env
class LearnedVectorEnv(VectorEnv[NDArray[np.float64], NDArray[np.float32], NDArray[Any]]):
    """`num_envs` copies of a `LearnedDynamicsEnv`, stepped together in one model call.

    `LearnedVectorEnv(model, base_env_id, num_envs, *, model_path=None, initial_states=None,
    bound=None, max_episode_steps=None, device="cpu", member="mean", sample=False)`: as for
    `LearnedDynamicsEnv` (an ensemble's `info["model_disagreement"]` is then `(N,)`).
    Spaces: `single_observation_space` / `single_action_space` are the base env's,
    `observation_space` `(num_envs, D)` and `action_space` `(num_envs, A)` their batches.

    `step(actions (N, A))` takes and returns numpy arrays (`obs (N, D)` float64, `rewards (N,)`
    float64, `terminations`, `truncations (N,)` bool); `step_tensor(actions)` is the fast path
    for planners and agents in torch: tensors in and out, in the model's dtype on `device`,
    no copies through numpy. Each copy counts its own episode steps and truncates at
    `max_episode_steps` or when its state diverges. `info["model_diverged"]` is a bool array
    `(N,)` at every step.

    Autoreset (`autoreset_mode`, also in `metadata["autoreset_mode"]`):

    - `AutoresetMode.SAME_STEP` (the default): a copy whose episode ends is reset within the
      same step: `obs` holds its new initial state, and `info["final_obs"]` `(N, D)` holds the
      state every copy reached before any reset (equal to `obs` where the mask
      `info["_final_obs"]` is False), present on steps where any copy ended. The default
      because every step is then a real model transition for every copy, and `final_obs`
      gives what truncated transitions need for bootstrapping. SB3's `VecEnv` works this way
      (`as_sb3()`).
    - `AutoresetMode.NEXT_STEP` (Gymnasium's default, which its vector observation wrappers
      require): a copy whose episode ended returns its final state, and on the next step it
      is reset instead of stepped (its action ignored; reward 0, both flags False).

    `render_mode="rgb_array"`: `render()` returns a tuple of the `N` copies' frames, each
    drawn by the base env (as Gymnasium's `SyncVectorEnv` does).

    `reset(seed=s)` draws copy 0 as the single env's `reset(seed=s)` does and the rest from
    the same stream; `reset(options={"state": Z})` starts every copy from `Z` `(N, D)`, and
    `options={"reset_mask": m}` resets only the copies where the bool array `m` `(N,)` is True.

    >>> import physprior
    >>> from physprior.models import make
    >>> model = make("mlp", obs_dim=2, action_dim=1, dt=0.1)
    >>> envs = physprior.LearnedVectorEnv(model, "physprior/MassSpring-v0", 8)
    >>> obs, info = envs.reset(seed=0)
    >>> obs, rewards, terminations, truncations, info = envs.step(envs.action_space.sample())
    >>> obs.shape, rewards.shape, info["model_diverged"].dtype
    ((8, 2), (8,), dtype('bool'))
    """

    metadata: dict[str, Any] = {  # noqa: RUF012
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.SAME_STEP,
    }

    def __init__(
        self,
        model: ModelLike | None = None,
        base_env_id: str | None = None,
        num_envs: int = 1,
        *,
        model_path: str | os.PathLike[str] | None = None,
        initial_states: Any | None = None,
        bound: float | None = None,
        max_episode_steps: int | None = None,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        render_mode: str | None = None,
        member: str | int = "mean",
        sample: bool = False,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        mode = _autoreset_mode(autoreset_mode)
        check_render_mode(render_mode, self.metadata)
        self.dynamics = _dynamics(
            model, model_path, base_env_id, bound=bound, device=device, member=member, sample=sample
        )
        base = self.dynamics.base_env
        self.base_env_id = self.dynamics.base_env_id
        self.num_envs = num_envs
        self.single_observation_space = base.observation_space
        self.single_action_space = base.action_space
        self.observation_space = gym.vector.utils.batch_space(base.observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(base.action_space, num_envs)
        self.max_episode_steps = _episode_length(max_episode_steps, self.dynamics)
        self.metadata = {
            **self.metadata,
            "render_fps": max(1, round(1.0 / float(base.dt))),
            "autoreset_mode": mode,
        }
        self.render_mode = render_mode
        self._frames = _Frames(self.base_env_id, render_mode, "LearnedVectorEnv")
        self.dt: float = float(base.dt)
        self.q_dim: int = int(base.q_dim)
        self.state_layout: str = str(base.state_layout)
        self._initial = _InitialStates(self.dynamics, initial_states)
        self._obs_dtype = base.observation_space.dtype
        self._state: Tensor | None = None
        self._steps = torch.zeros(num_envs, dtype=torch.long, device=self.dynamics.device)
        self._all = torch.ones(num_envs, dtype=torch.bool, device=self.dynamics.device)
        # NEXT_STEP: the copies whose episode ended on the last step (reset on the next one).
        self._ended = torch.zeros(num_envs, dtype=torch.bool, device=self.dynamics.device)

    @property
    def autoreset_mode(self) -> AutoresetMode:
        """How a finished copy restarts (`metadata["autoreset_mode"]`; see the class doc)."""
        mode: AutoresetMode = self.metadata["autoreset_mode"]
        return mode

    @property
    def state(self) -> Tensor | None:
        """The current states `(N, D)` in the model's dtype (None before `reset`); read only."""
        return self._state

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        """Reset every copy (or those in `options["reset_mask"]`); returns `obs (N, D)`, `{}`."""
        super().reset(seed=seed)
        dyn, n = self.dynamics, self.num_envs
        _seed_members(dyn, self.np_random, seed)
        options = options or {}
        mask = np.ones(n, dtype=bool)
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({n},), got "
                    f"{mask.dtype} {mask.shape}"
                )
            if self._state is None and not mask.all():
                raise RuntimeError("a partial reset needs a full reset() first")
        rows = torch.as_tensor(mask, device=dyn.device)
        if "state" in options:
            z = _check_state(options["state"], (n, dyn.obs_dim), "options['state']", dyn.dtype)
            fresh = torch.as_tensor(z, dtype=dyn.dtype, device=dyn.device)[rows]
        else:
            fresh = self._initial.draw(int(mask.sum()), self.np_random, seed)
        if self._state is None:
            self._state = fresh
        else:
            state = self._state.clone()
            state[rows] = fresh
            self._state = state
        self._steps[rows] = 0
        self._ended[rows] = False
        return self._numpy(self._state), {}

    def step(
        self, actions: Any
    ) -> tuple[
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.bool_],
        NDArray[np.bool_],
        dict[str, Any],
    ]:
        """Step every copy with `actions` `(N, A)` (numpy); numpy results, SAME_STEP autoreset."""
        n, a = self.num_envs, self.dynamics.action_dim
        if _shape(actions) != (n, a):
            raise ValueError(f"actions have shape {_shape(actions)}, expected shape ({n}, {a})")
        obs, rewards, terminated, truncated, info = self.step_tensor(
            torch.as_tensor(np.asarray(actions))
        )
        np_info: dict[str, Any] = {k: to_numpy(v) for k, v in info.items()}
        if "final_obs" in np_info:
            np_info["final_obs"] = np_info["final_obs"].astype(self._obs_dtype)
        return (
            self._numpy(obs),
            to_numpy(rewards).astype(np.float64),
            to_numpy(terminated),
            to_numpy(truncated),
            np_info,
        )

    def step_tensor(
        self, actions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """The torch fast path of `step`: `actions` `(N, A)` -> tensors on `device`.

        Returns `obs (N, D)`, `rewards (N,)` (model dtype), `terminations`, `truncations (N,)`
        bool, and `info` with `model_diverged (N,)` (and `final_obs`, `_final_obs` when a copy
        ended). The returned `obs` is the env's state: do not modify it in place.
        """
        if self._state is None:
            raise RuntimeError("LearnedVectorEnv.step() called before reset()")
        dyn = self.dynamics
        # The state is finite by construction; only the actions need checking.
        actions = dyn._check_batch(actions, "actions", dyn.action_dim, self.num_envs)
        next_obs, reward, terminated, diverged = dyn._transition(self._state, actions)
        self._steps += 1
        truncated = diverged
        if self.max_episode_steps is not None:
            truncated = truncated | (self._steps >= self.max_episode_steps)
        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            return self._next_step_reset(next_obs, reward, terminated, truncated, diverged)
        done = terminated | truncated
        info: dict[str, Tensor] = {"model_diverged": diverged, "_model_diverged": self._all}
        if dyn.last_disagreement is not None:
            info["model_disagreement"] = dyn.last_disagreement
            info["_model_disagreement"] = self._all
        rows = torch.nonzero(done).squeeze(-1)
        if rows.numel():
            info["final_obs"] = next_obs
            info["_final_obs"] = done
            next_obs = next_obs.clone()
            next_obs[rows] = self._initial.draw(int(rows.numel()), self.np_random)
            self._steps[rows] = 0
        self._state = next_obs
        return next_obs, reward, terminated, truncated, info

    def _next_step_reset(
        self,
        next_obs: Tensor,
        reward: Tensor,
        terminated: Tensor,
        truncated: Tensor,
        diverged: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
        """NEXT_STEP: the copies that ended last step restart now (their transition above is
        discarded: a model step from a final state), the others keep their transition."""
        ended = self._ended
        rows = torch.nonzero(ended).squeeze(-1)
        if rows.numel():
            next_obs = next_obs.clone()
            next_obs[rows] = self._initial.draw(int(rows.numel()), self.np_random)
            self._steps[rows] = 0
            zero = torch.zeros_like(ended)
            reward = torch.where(ended, torch.zeros_like(reward), reward)
            terminated = torch.where(ended, zero, terminated)
            truncated = torch.where(ended, zero, truncated)
            diverged = torch.where(ended, zero, diverged)
        self._ended = terminated | truncated
        self._state = next_obs
        info = {"model_diverged": diverged, "_model_diverged": self._all}
        disagreement = self.dynamics.last_disagreement
        if disagreement is not None:
            info["model_disagreement"] = torch.where(ended, 0.0, disagreement)
            info["_model_disagreement"] = self._all
        return next_obs, reward, terminated, truncated, info

    def render(self) -> tuple[NDArray[np.uint8], ...] | None:
        """The `N` copies' current frames (`render_mode="rgb_array"`), drawn by the base env."""
        frames = self._frames.draw(self._state)
        return None if frames is None else tuple(frames)

    def as_sb3(self) -> Any:
        """This vector env as a Stable-Baselines3 `VecEnv` (`physprior.learned_env.sb3`), so
        SB3's algorithms train on all `N` model copies at once."""
        from .sb3 import SB3LearnedVecEnv

        return SB3LearnedVecEnv(self)

    def _numpy(self, states: Tensor) -> NDArray[np.float64]:
        return np.array(to_numpy(states), dtype=self._obs_dtype)

    def close_extras(self, **kwargs: Any) -> None:
        self._frames.close()
        self.dynamics.close()
