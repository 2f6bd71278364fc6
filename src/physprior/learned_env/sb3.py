"""A Stable-Baselines3 `VecEnv` view of `LearnedVectorEnv`: SB3's algorithms on N model copies.

SB3 trains on several env copies through its own `VecEnv` interface (`reset() -> obs`,
`step_async` / `step_wait -> (obs, rewards, dones, infos)`), which Gymnasium's `VectorEnv` does
not provide. `SB3LearnedVecEnv(envs)` (or `envs.as_sb3()`) adapts a `LearnedVectorEnv` without
copying its state: one batched model call steps every copy, so PPO or SAC with `N` copies costs
one model call per step, not `N`.

What SB3 expects, and where it comes from:

- autoreset in the same step, with the last state of a finished copy in
  `infos[i]["terminal_observation"]`: the vector env's `SAME_STEP` mode and `final_obs`;
- `infos[i]["TimeLimit.truncated"]`: the copy was truncated (time limit, or the model
  diverged, `infos[i]["model_diverged"]`) and not terminated, so SB3 bootstraps from it;
- rewards as float32 (SB3's own vec envs store them so);
- `seed(s)` seeds the next `reset()`; every copy draws from the one stream of `s`.

>>> import physprior
>>> from physprior.models import make
>>> model = make("mlp", obs_dim=2, action_dim=1, dt=0.1)
>>> vec = physprior.LearnedVectorEnv(model, "physprior/MassSpring-v0", 4).as_sb3()
>>> obs = vec.reset()
>>> obs, rewards, dones, infos = vec.step(vec.action_space.sample()[None].repeat(4, 0))
>>> obs.shape, rewards.dtype, sorted(infos[0])
((4, 2), dtype('float32'), ['TimeLimit.truncated', 'model_diverged'])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from .vector import LearnedVectorEnv

__all__ = ["SB3LearnedVecEnv"]


class SB3LearnedVecEnv(VecEnv):
    """`envs` (a `LearnedVectorEnv` in `SAME_STEP` mode) as an SB3 `VecEnv`; see the module."""

    def __init__(self, envs: LearnedVectorEnv) -> None:
        if not isinstance(envs, LearnedVectorEnv):
            raise TypeError(f"envs must be a LearnedVectorEnv, got {type(envs).__name__}")
        if envs.autoreset_mode is not AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3's VecEnv resets a finished copy within the same step: build the "
                f"LearnedVectorEnv with autoreset_mode=SAME_STEP, not {envs.autoreset_mode}"
            )
        self.learned = envs  # before VecEnv's __init__, which reads attributes through it
        self._actions: NDArray[Any] | None = None
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    # ------------------------------------------------------------------ stepping
    def reset(self) -> NDArray[np.float64]:
        seeds = [s for s in self._seeds if s is not None]
        obs, _ = self.learned.reset(seed=seeds[0] if seeds else None)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: NDArray[Any]) -> None:
        self._actions = np.asarray(actions)

    def step_wait(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float32], NDArray[np.bool_], list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, info = self.learned.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        diverged = info["model_diverged"]
        infos: list[dict[str, Any]] = [
            {
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "model_diverged": bool(diverged[i]),
            }
            for i in range(self.num_envs)
        ]
        if dones.any():
            final = info["final_obs"]
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = final[i].copy()
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.learned.close()

    def get_images(self) -> Sequence[NDArray[np.uint8] | None]:
        frames = self.learned.render()
        return [None] * self.num_envs if frames is None else list(frames)

    # ------------------------------------------------------------------ attributes
    # The copies share one model and one base env: an attribute has one value for all.
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [int(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.learned, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(self._indices(indices)) != self.num_envs:
            raise ValueError(
                f"the {self.num_envs} copies share their attributes: set {attr_name!r} on all"
            )
        setattr(self.learned, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        result = getattr(self.learned, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [False for _ in self._indices(indices)]
