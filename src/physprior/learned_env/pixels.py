"""`PixelLearnedEnv`: a Gymnasium env that steps a pixel model's latent state.

A pixel model (`pixel-vin`, `hgn`, `pixel-hnn`) learns from frames and keeps its state in a
latent space: the env's state is that latent, advanced by the model's latent dynamics; what
the agent sees is the decoded frame (`observation="frame"`: VIN's predicted pixel
probabilities, 28 x 28; HGN's RGB values, 32 x 32 x 3) or the latent itself
(`observation="latent"`). A reset starts the real system (`base_env_id`, its own
initial-state distribution), shows the model its first `inference_frames` frames (drawn the
model's way: `frame_style`), infers the latent from them (posterior mean) and rolls it to the
last of those frames: the episode starts there.

Rewards: a latent has no physical units, so the base env's reward cannot be computed on it.
Pass `reward_fn(latent, action, next_latent) -> float` for control; without one the reward
is 0 (a world model for forecasting, as the VIN paper uses it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, Literal, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray

from physprior.data import render_frames
from physprior.data._frames import FrameStyle
from physprior.models import TransitionModel

from .dynamics import make_base_env, resolve_model

__all__ = ["PixelLearnedEnv"]

Observation = Literal["frame", "latent"]
RewardFn = Callable[[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], float]


class PixelLearnedEnv(gym.Env[NDArray[Any], NDArray[np.float32]]):
    """A pixel model's latent dynamics as a `gymnasium.Env`.

    Args:
        model: a trained pixel model (`pixel-vin`, `hgn`, `pixel-hnn`) or its checkpoint
            folder.
        base_env_id: the physics env whose frames it learned (`physprior/Pendulum-v0`, ...).
        base_env_kwargs: the base env's constructor arguments (e.g. the VIN protocol's
            `gravity=4.91, start="vin"`, or HGN's `mass=0.5, dt=0.125`); they must give the
            model's frame spacing `dt`.
        observation: `"frame"` (float32 in [0, 1], the model's `frame_shape`: `(28, 28)`
            pixel probabilities for `pixel-vin`, `(32, 32, 3)` RGB for `hgn`) or `"latent"`
            (`(obs_dim,)` float32, the latent state).
        reward_fn: `reward_fn(latent, action, next_latent)`; `None`: reward 0.
        max_episode_steps: truncate after this many steps (`None`: never).
        render_mode: `None` or `"rgb_array"` (the predicted frame as uint8 RGB; binary
            frames in grey levels, dark where a pixel is likely set).

    The action space is the model's: `Box(-1, 1, (action_dim,))`, empty for an autonomous
    model (the papers'; `hgn` with `action_dim > 0` learns a force on its momenta). `info`
    holds `"latent"` and `"frame"` at every step.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012 (gymnasium's API)

    def __init__(
        self,
        model: TransitionModel | str | os.PathLike[str],
        base_env_id: str,
        *,
        base_env_kwargs: dict[str, Any] | None = None,
        observation: Observation = "frame",
        reward_fn: RewardFn | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        resolved = resolve_model(model)
        style = getattr(resolved, "frame_style", None)
        if style not in ("binary", "hgn"):
            raise TypeError(
                f"PixelLearnedEnv needs a pixel model (pixel-vin, hgn, pixel-hnn), got "
                f"{resolved.name!r}; state models go in physprior.LearnedDynamicsEnv"
            )
        self.model: Any = cast(Any, resolved)  # a pixel model: frame_style, decode_frames, ...
        self.frame_style: FrameStyle = style
        if observation not in ("frame", "latent"):
            raise ValueError(f"observation must be 'frame' or 'latent', got {observation!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int)
            or max_episode_steps < 1
        ):
            raise ValueError(f"max_episode_steps must be None or >= 1, got {max_episode_steps!r}")
        if reward_fn is not None and not callable(reward_fn):
            raise TypeError(f"reward_fn must be callable or None, got {type(reward_fn).__name__}")
        base = make_base_env(base_env_id, **(base_env_kwargs or {}))
        try:
            drawn = render_frames(base, np.zeros((1, base.obs_dim)), style)
        except (TypeError, NotImplementedError) as err:
            base.close()
            raise ValueError(
                f"base env {base_env_id!r} cannot draw {style} frames: {err}"
            ) from None
        if not math.isclose(self.model.dt, float(base.dt), rel_tol=1e-6):
            base.close()
            raise ValueError(
                f"model has dt {self.model.dt} (its frame spacing), but {base_env_id} with "
                f"{base_env_kwargs or {}} has dt {base.dt}"
            )
        if self.model.data_dim != drawn.shape[-1]:
            base.close()
            raise ValueError(
                f"model reads frames of {self.model.data_dim} values; {base_env_id} draws "
                f"{style} frames of {drawn.shape[-1]}"
            )
        self.base_env = base
        self.frame_shape: tuple[int, ...] = tuple(self.model.frame_shape)
        self.model.eval()
        self.observation = observation
        self.reward_fn = reward_fn
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / self.model.dt))}
        latent_dim = self.model.obs_dim
        if observation == "frame":
            self.observation_space = spaces.Box(0.0, 1.0, self.frame_shape, np.float32)
        else:
            self.observation_space = spaces.Box(-np.inf, np.inf, (latent_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.model.action_dim,), np.float32)
        self._latent: torch.Tensor | None = None
        self._frame: NDArray[np.float32] | None = None
        self._steps = 0

    # ------------------------------------------------------------------ helpers
    def _decode(self, latent: torch.Tensor) -> NDArray[np.float32]:
        with torch.no_grad():
            values = self.model.decode_frames(latent).clamp(0.0, 1.0)
        return values.reshape(self.frame_shape).cpu().numpy().astype(np.float32)

    def _observe(self) -> tuple[NDArray[np.float32], dict[str, Any]]:
        assert self._latent is not None and self._frame is not None
        latent = self._latent[0].cpu().numpy().astype(np.float32)
        info = {"latent": latent, "frame": self._frame}
        return (self._frame if self.observation == "frame" else latent), info

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start the base env (seeded with `seed`), infer the latent from its first frames,
        and start at the last of them. `options={"state": z}` starts the base env at `z`."""
        super().reset(seed=seed)
        state, _ = self.base_env.reset(seed=seed, options=options)
        k = self.model.inference_frames
        rest = np.zeros(self.base_env.action_space.shape, dtype=np.float32)
        states = [state]
        for _ in range(k - 1):
            states.append(self.base_env.step(rest)[0])
        frames = render_frames(self.base_env, np.stack(states), self.frame_style)[None]
        inputs = torch.as_tensor(frames, dtype=self.model.dtype)
        with torch.no_grad():
            path, _ = self.model.latent_rollout(inputs, k - 1)
        self._latent = path[:, -1]
        self._frame = self._decode(self._latent)
        self._steps = 0
        return self._observe()

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self._latent is None:
            raise RuntimeError("PixelLearnedEnv.step() called before reset()")
        act = np.asarray(action, dtype=np.float32).reshape(-1)
        if act.shape != self.action_space.shape:
            raise ValueError(
                f"action has shape {act.shape}, expected {self.action_space.shape} "
                f"(the model's action_dim {self.model.action_dim})"
            )
        if not np.isfinite(act).all():
            raise ValueError(f"action holds NaN or infinite values: {act}")
        act = np.clip(act, -1.0, 1.0)
        before = self._latent
        with torch.no_grad():
            u = torch.as_tensor(act[None], dtype=self.model.dtype)
            self._latent = self.model.step(before, u)
        self._frame = self._decode(self._latent)
        self._steps += 1
        reward = 0.0
        if self.reward_fn is not None:
            reward = float(
                self.reward_fn(
                    before[0].double().numpy(),
                    act.astype(np.float64),
                    self._latent[0].double().numpy(),
                )
            )
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        observation, info = self._observe()
        return observation, reward, False, truncated, info

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode is None:
            gym.logger.warn("PixelLearnedEnv.render() called without a render_mode")
            return None
        if self._frame is None:
            raise RuntimeError("PixelLearnedEnv.render() called before reset()")
        if self.frame_style == "hgn":
            return np.round(255.0 * self._frame).astype(np.uint8)
        grey = np.round(255.0 * (1.0 - self._frame)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)

    def close(self) -> None:
        self.base_env.close()
