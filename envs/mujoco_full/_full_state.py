"""The machinery every full-state MuJoCo variant shares: the `[qpos, qvel]` observation,
the checked construction, the batched reward and termination terms, headless rendering."""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from numpy.typing import NDArray

from .._validation import check_action, check_render_mode, check_state, strict_kwargs
from .._xp import as_batch, constant_like, is_torch, namespace, unbatch

FloatArray = NDArray[np.float64]
F = TypeVar("F", bound=Callable[..., None])

#: Keyword arguments of Gymnasium's `MujocoEnv` that only affect rendering; every variant
#: accepts them and passes them through.
RENDER_KWARGS: tuple[str, ...] = (
    "render_mode",
    "width",
    "height",
    "camera_id",
    "camera_name",
    "default_camera_config",
    "max_geom",
    "visual_options",
)


def _check_value(name: str, value: Any) -> None:
    """Refuse values v5 would accept silently but that make no sense (ValueError, one line)."""
    if name == "frame_skip":
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"frame_skip must be a positive integer, got {value!r}")
    elif name == "terminate_when_unhealthy":
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"terminate_when_unhealthy must be a bool, got {value!r}")
    elif name.endswith("_range"):
        pair = tuple(value) if isinstance(value, tuple | list | np.ndarray) else ()
        if len(pair) != 2 or not (float(pair[0]) <= float(pair[1])):
            raise ValueError(f"{name} must be a pair (low, high) with low <= high, got {value!r}")
    elif name.endswith("_weight") or name in ("healthy_reward", "reset_noise_scale"):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(value) or (name == "reset_noise_scale" and value < 0):
            raise ValueError(f"{name} must be finite (and >= 0 for a noise scale), got {value!r}")


def _choose_headless_gl() -> None:
    """Pick EGL for MuJoCo rendering on a machine without a display, unless the user chose.

    Left unset, Gymnasium tries GLFW first, which needs a display: without one it fails, and
    on some systems aborts the whole process, before EGL is tried. Gymnasium reads
    `MUJOCO_GL` when the first renderer is built, so setting it here is in time.
    """
    if "MUJOCO_GL" in os.environ:
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["MUJOCO_GL"] = "egl"


#: The start of the one MuJoCo warning HalfCheetah's compile always raises (see its docstring).
_SETTOTALMASS_WARNING = "compiler attribute 'settotalmass' is deprecated"


@contextmanager
def _without_settotalmass_warning() -> Iterator[None]:
    """Drop MuJoCo's settotalmass deprecation warning while the body runs; pass others on.

    MuJoCo has one global warning handler; the previous one (None: MuJoCo's own, which
    prints "WARNING: ..." and appends to MUJOCO_LOG.TXT) is restored afterwards.
    """
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if message.startswith(_SETTOTALMASS_WARNING):
            return
        if previous is not None:
            previous(message)
        else:
            print(f"WARNING: {message}", file=sys.stderr)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _full_state_init(init: F) -> F:
    """Decorate a variant's `__init__`: strict kwargs, value checks, full-state setup, pickling.

    The valid kwargs are the keyword-only parameters of `init` plus `RENDER_KWARGS` (which
    `init` takes as `**render_kwargs`), so the error for a mistyped or refused kwarg (say
    `exclude_current_positions_from_observation`) lists exactly what is accepted.
    """
    names = [
        p.name
        for p in inspect.signature(init).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]

    @functools.wraps(init)
    def wrapper(self: _FullStateEnv, **kwargs: Any) -> None:
        check_render_mode(kwargs.get("render_mode"), self.metadata)
        for name, value in kwargs.items():
            _check_value(name, value)
        init(self, **kwargs)
        self._setup_full_state(kwargs.get("frame_skip"))
        # v5 recorded its own positional arguments for pickling; record ours instead, so that
        # pickle and deepcopy rebuild this class with the kwargs it was given.
        utils.EzPickle.__init__(self, **kwargs)

    return strict_kwargs(valid=(*names, *RENDER_KWARGS))(wrapper)  # type: ignore[return-value]


class _FullStateEnv(MujocoEnv, utils.EzPickle):
    """The shared part of the full-state variants (not registered).

    Subclasses list this class first and the v5 class second, so `super().step` is v5's step
    and `_get_obs` here replaces v5's. They define `_reward` and `_terminated` on batches
    `(..., D)`, and the class constants below.
    """

    # Only offscreen RGB: "human" needs a display, and the physics envs' contract (uint8
    # frames (H, W, 3)) has no depth images. Gymnasium's check_env renders every listed mode.
    metadata: dict[str, Any] = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    #: Layout of observations: generalised positions `qpos`, then velocities `qvel`.
    state_layout: ClassVar[str] = "qv"
    #: The Gymnasium environment this variant reproduces.
    base_env_id: ClassVar[str]
    #: `dt` of the registered default (PROTOCOLS.md), checked against the model at construction.
    _protocol_dt: ClassVar[float]
    _default_frame_skip: ClassVar[int]

    q_dim: int
    v_dim: int

    def _setup_full_state(self, frame_skip: int | None) -> None:
        """Replace v5's observation space, observation structure and render modes."""
        default = frame_skip in (None, self._default_frame_skip)
        if default and not math.isclose(self.dt, self._protocol_dt, rel_tol=1e-12):
            raise RuntimeError(
                f"{type(self).__name__}: the model gives dt = {self.dt}, not the protocol's "
                f"{self._protocol_dt}; has Gymnasium changed {self.base_env_id}'s model?"
            )
        self._action_shape: tuple[int, ...] = tuple(self.action_space.shape)  # type: ignore[arg-type]
        self.q_dim = int(self.model.nq)
        self.v_dim = int(self.model.nv)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.q_dim + self.v_dim,), np.float64)
        self.observation_structure = {"skipped_qpos": 0, "qpos": self.q_dim, "qvel": self.v_dim}
        self.metadata = {**self.metadata, "render_modes": list(type(self).metadata["render_modes"])}

    # ------------------------------------------------------------------ gymnasium API
    def _get_obs(self) -> FloatArray:
        return np.concatenate((self.data.qpos, self.data.qvel))

    def step(  # type: ignore[override]  # MujocoEnv annotates a float32 action, np.float64 reward
        self, action: Any
    ) -> tuple[FloatArray, float, bool, bool, dict[str, Any]]:
        """v5's step on the validated action (float64; ValueError naming the expected shape)."""
        # The action check is the per-step cost over v5 (with AntFull's kinematics refresh), so
        # the common case (a finite float array of the right shape) takes a ~1 us fast path:
        # the shared `check_action` costs ~8 us here (mostly `np.isfinite(...).all()` on a
        # handful of numbers), ~8% of a HalfCheetah step. Converting to float64 up front also
        # makes v5's own arithmetic on the action cheaper than on a Box sample's float32.
        shape = self._action_shape
        if type(action) is np.ndarray and action.dtype.kind == "f" and action.shape == shape:
            a = action.astype(np.float64, copy=False)
            if not all(map(math.isfinite, a.tolist())):
                a = check_action(a, shape)  # raises with the shared message
        else:
            a = check_action(action, shape)
        # v5's step takes any float array (MujocoEnv annotates float32). Its flags are bools;
        # its reward an np.float64, or an int for InvertedPendulum: made a float here.
        obs, reward, terminated, truncated, info = super().step(a)  # type: ignore[arg-type]
        return obs, float(reward), terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatArray, dict[str, Any]]:
        """v5's reset; `options={"state": z}` then sets `[qpos, qvel] = z` `(q_dim + v_dim,)`."""
        obs, info = super().reset(seed=seed, options=options)
        if options and "state" in options:
            z = check_state(options["state"], self.observation_space.shape)  # type: ignore[arg-type]
            self.set_state(z[: self.q_dim], z[self.q_dim :])
            obs, info = self._get_obs(), self._get_reset_info()
        return obs, info

    def render(self) -> Any:
        if self.render_mode is None:
            gym.logger.warn(
                f"{type(self).__name__}.render() called without a render_mode; "
                'pass render_mode="rgb_array" to the constructor or gym.make'
            )
            return None
        _choose_headless_gl()
        try:
            return super().render()
        except Exception as err:  # mujoco.FatalError, GLFW/EGL import and context errors
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RuntimeError(
                f"{type(self).__name__} could not render with MUJOCO_GL="
                f"{os.environ.get('MUJOCO_GL')!r}: {first}; on a machine without a display set "
                "MUJOCO_GL=egl (GPU or Mesa EGL) or MUJOCO_GL=osmesa (software)"
            ) from None

    # ------------------------------------------------------------------ batched contract
    def reward_fn(self, obs: Any, action: Any, next_obs: Any) -> Any:
        """Reward of transitions `(N, D), (N, A), (N, D) -> (N,)` (numpy or torch).

        Reproduces `step`'s reward from the observations alone; `action` is the action passed to
        `step` (not clipped, as in v5). One unbatched transition gives a float (numpy) or a 0-d
        tensor (torch).
        """
        d = self.observation_space.shape[0]  # type: ignore[index]
        obs_b, single = as_batch(obs, d, "obs")
        next_b, _ = as_batch(next_obs, d, "next_obs")
        act_b, _ = as_batch(action, self.action_space.shape[0], "action")  # type: ignore[index]
        if is_torch(act_b) and is_torch(obs_b) and act_b.dtype != obs_b.dtype:
            # step() squares float64 actions; a float32 action tensor would square in float32.
            act_b = act_b.to(dtype=obs_b.dtype)
        return unbatch(self._reward(obs_b, act_b, next_b), single)

    def termination_fn(self, next_obs: Any) -> Any:
        """Whether each `next_obs` `(N, D)` ends the episode -> `(N,)` booleans."""
        batch, single = as_batch(next_obs, self.observation_space.shape[0], "next_obs")  # type: ignore[index]
        return unbatch(self._terminated(batch), single)

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        raise NotImplementedError

    def _terminated(self, next_obs: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------------ reward terms
    def _forward_reward(self, obs: Any, next_obs: Any) -> Any:
        """`w_forward * (x' - x) / dt` from the root x position `qpos[0]`, as v5 computes it."""
        w: float = self._forward_reward_weight  # type: ignore[attr-defined]
        return w * ((next_obs[..., 0] - obs[..., 0]) / self.dt)

    def _ctrl_cost(self, action: Any) -> Any:
        """`w_ctrl * |u|^2` of the control `u` passed to v5's step."""
        w: float = self._ctrl_cost_weight  # type: ignore[attr-defined]
        return w * namespace(action).sum(action * action, axis=-1)

    def _healthy_term(self, healthy: Any, like: Any) -> Any:
        """v5's `healthy_reward * is_healthy`, as floats of `like`'s dtype.

        (In torch, bool tensor * python float gives float32.)
        """
        return constant_like(self._healthy_reward, like) * healthy  # type: ignore[attr-defined]

    def _unhealthy_terminates(self, healthy: Any) -> Any:
        """v5's `terminated = (not is_healthy) and terminate_when_unhealthy`."""
        if self._terminate_when_unhealthy:  # type: ignore[attr-defined]
            return ~healthy
        return _falses(healthy, tuple(healthy.shape))


def _falses(like: Any, shape: tuple[int, ...]) -> Any:
    """All-False booleans of `shape`, numpy or torch (on `like`'s device) as `like`."""
    xp = namespace(like)
    if xp is np:
        return np.zeros(shape, dtype=bool)
    return xp.zeros(shape, dtype=xp.bool, device=like.device)


class _ForwardFullStateEnv(_FullStateEnv):
    """A variant whose episode never ends early (HalfCheetah, Swimmer): v5's reward
    `forward - ctrl_cost` and no termination."""

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        return self._forward_reward(obs, next_obs) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return _falses(next_obs, tuple(next_obs.shape[:-1]))


class _HealthyFullStateEnv(_FullStateEnv):
    """A variant whose episode ends when its body is unhealthy (Hopper, Walker2d, Ant): v5's
    reward `forward + healthy_reward * healthy - ctrl_cost` and termination `not healthy`
    (when `terminate_when_unhealthy`), from the variant's own `_healthy(z)` on `(..., D)`."""

    def _healthy(self, z: Any) -> Any:
        raise NotImplementedError

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        healthy = self._healthy_term(self._healthy(next_obs), next_obs)
        return (self._forward_reward(obs, next_obs) + healthy) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return self._unhealthy_terminates(self._healthy(next_obs))


def _upright(z: Any, height_range: tuple[float, float], angle_range: tuple[float, float]) -> Any:
    """The planar walkers' (Hopper, Walker2d) posture test on `z (..., D)`: the torso's height
    `qpos[1]` and angle `qpos[2]` strictly inside their ranges, as v5 tests them."""
    z_lo, z_hi = height_range
    a_lo, a_hi = angle_range
    return (z_lo < z[..., 1]) & (z[..., 1] < z_hi) & (a_lo < z[..., 2]) & (z[..., 2] < a_hi)
