"""What the single and the vector learned env share: their dynamics from a model or a
checkpoint, the initial states, the checks of states and actions, the episode length and
the frames drawn by the base env."""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from physprior.models import TransitionModel

from .dynamics import ModelDynamics, ModelLike, resolve_model


# ---------------------------------------------------------------------------------- initial states
class _InitialStates:
    """Initial states from the base env's reset, or drawn uniformly from a given array `(M, D)`."""

    def __init__(self, dynamics: ModelDynamics, states: Any | None) -> None:
        self.dynamics = dynamics
        self.pool: Tensor | None = None
        if states is not None:
            array = np.asarray(states, dtype=np.float64)
            d = dynamics.obs_dim
            if array.ndim != 2 or array.shape[1] != d or array.shape[0] == 0:
                raise ValueError(
                    f"initial_states has shape {array.shape}, expected (M, {d}) with M >= 1"
                )
            _check_in_range(array, dynamics.dtype, "initial_states")
            pool = torch.as_tensor(array)
            self.pool = pool.to(dtype=dynamics.dtype, device=dynamics.device)

    def draw(self, k: int, rng: np.random.Generator, seed: int | None = None) -> Tensor:
        """`k` initial states `(k, D)`. From the base env, `seed` seeds its first reset (the
        base env's own generator runs on after that); from the array, `rng` picks rows."""
        if self.pool is not None:
            rows = torch.as_tensor(
                rng.integers(self.pool.shape[0], size=k), device=self.pool.device
            )
            return self.pool[rows]
        base = self.dynamics.base_env
        states = [base.reset(seed=seed if i == 0 else None)[0] for i in range(k)]
        array = np.stack(states) if states else np.zeros((0, self.dynamics.obs_dim))
        return torch.as_tensor(array, dtype=self.dynamics.dtype, device=self.dynamics.device)


def _dynamics(
    model: ModelLike | None,
    model_path: str | os.PathLike[str] | None,
    base_env_id: str | None,
    **options: Any,
) -> ModelDynamics:
    """The envs' `ModelDynamics`: the model (or the one at `model_path`) on `base_env_id` (or
    the env it was trained on), with `bound`, `device`, `member` and `sample`."""
    resolved = _pick_model(model, model_path)
    return ModelDynamics(resolved, _pick_base_id(resolved, base_env_id), **options)


def _pick_model(
    model: ModelLike | None, model_path: str | os.PathLike[str] | None
) -> TransitionModel:
    if (model is None) == (model_path is None):
        raise TypeError("pass exactly one of model (a TransitionModel or path) and model_path")
    return resolve_model(model if model is not None else model_path)  # type: ignore[arg-type]


def _pick_base_id(model: TransitionModel, base_env_id: str | None) -> str:
    if base_env_id is not None:
        return base_env_id
    if model.config.env_id is None:
        raise TypeError(
            "base_env_id is required: the model does not record the env it was trained on"
        )
    return model.config.env_id


#: Up to this many values, `_check_in_range` compares them one by one in Python.
_FEW = 16


def _check_in_range(values: NDArray[np.float64], dtype: torch.dtype, name: str) -> None:
    """Refuse values that are not finite, or that become inf in the model's `dtype`."""
    limit = torch.finfo(dtype).max
    if values.size <= _FEW:
        # A single env's action: Python's comparisons beat numpy's calls on a handful of
        # numbers. NaN compares False, so it falls through to the checks below.
        if all(-limit <= v <= limit for v in values.ravel().tolist()):
            return
    elif float(np.abs(values).max(initial=0.0)) <= limit:  # one reduction, NaN compares False
        return
    largest = float(np.abs(values).max(initial=0.0))
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or inf")
    raise ValueError(
        f"{name} holds {largest:.3g}, beyond the model's {str(dtype).removeprefix('torch.')} "
        f"range (|value| <= {limit:.3g})"
    )


def _check_state(
    state: Any, shape: tuple[int, ...], name: str, dtype: torch.dtype
) -> NDArray[np.float64]:
    try:
        s = np.asarray(state, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {state!r}") from None
    if s.shape != shape:
        raise ValueError(f"{name} has shape {s.shape}, expected shape {shape}")
    _check_in_range(s, dtype, name)
    return s


# ---------------------------------------------------------------------------------- rendering
class _Frames:
    """Frames of model states, drawn by a second base env made on first use (so drawing never
    advances the random stream of initial states)."""

    def __init__(self, base_env_id: str, render_mode: str | None, owner: str) -> None:
        self.base_env_id, self.render_mode, self.owner = base_env_id, render_mode, owner
        self._env: Any = None

    def draw(self, states: Tensor | None) -> list[Any] | None:
        """One frame per row of `states (N, D)`; None (with a warning) without a render_mode."""
        if self.render_mode is None:
            gym.logger.warn(
                f"{self.owner}.render() called without a render_mode; pass "
                'render_mode="rgb_array" to the constructor (or gym.make / gym.make_vec)'
            )
            return None
        if states is None:
            raise RuntimeError(f"{self.owner}.render() called before reset()")
        if self._env is None:
            self._env = gym.make(self.base_env_id, render_mode=self.render_mode).unwrapped
        frames = []
        for state in states.detach().double().cpu().numpy():
            self._env.reset(options={"state": state})
            frames.append(self._env.render())
        return frames

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None


def _episode_length(max_episode_steps: int | None, dynamics: ModelDynamics) -> int | None:
    if max_episode_steps is None:
        return dynamics.max_episode_steps
    if isinstance(max_episode_steps, bool) or int(max_episode_steps) != max_episode_steps:
        raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be a positive integer, got {max_episode_steps!r}")
    return int(max_episode_steps)
