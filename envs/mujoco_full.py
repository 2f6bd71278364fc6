"""Full-state MuJoCo environments (decon-hnn appendix C): observation `[qpos, qvel]`.

Gymnasium's v5 locomotion environments preprocess what they return: HalfCheetah, Hopper and
Walker2d drop the root x position, Swimmer and Ant drop x and y, Hopper and Walker2d clip the
velocities to [-10, 10], and Ant appends clipped contact forces. A model of the dynamics needs
the state itself, so the variants here return `z = [q, v] = [data.qpos, data.qvel]`, complete,
unclipped, float64 (`state_layout = "qv"`), with the same physics, reward and termination as
v5, written out as batched `reward_fn(obs, action, next_obs)` and `termination_fn(next_obs)` that
work on numpy arrays and torch tensors.

Design: each variant *subclasses* its Gymnasium v5 class (`HopperFullEnv(_FullStateEnv,
HopperEnv)`) and replaces only `_get_obs` and the observation space. v5's own `step` runs
unchanged, so the physics, the reward terms, `info`, seeding (`reset(seed=...)` draws the same
initial state as v5 with that seed), rendering and pickling are v5's by construction, at no
cost per step beyond the action check. Composition (a wrapper that rebuilds the observation from
`env.unwrapped.data` after v5's step) would add a layer of calls, compute the discarded v5
observation as well, and leave `env.unwrapped` a v5 env without `reward_fn`, `q_dim` or `dt` of
its own; the contract (DESIGN.md) needs those on `env.unwrapped`. The price of subclassing is
coupling to v5's private attribute names (`_ctrl_cost_weight`, ...): `reward_fn` reads the same
attributes v5's `step` reads, and the tests compare every variant with the plain v5 env, so a
change upstream fails loudly.

What differs from v5, and why:

- Observation: `[qpos, qvel]`, nothing dropped, nothing clipped or appended.
- Ant: the contact cost needs `data.cfrc_ext`, which is not a function of `[q, v]` (the forces
  come from the transition, not the state), so it is off (`contact_cost_weight = 0`).
  And v5 measures the torso's forward displacement with `data.body("torso").xpos`, which
  `mj_step` leaves at the kinematics of the last integration stage, one substep behind the
  final `qpos` (google-deepmind/mujoco#889, Gymnasium #1690); that lag is not a function of the
  observation either. AntFull refreshes the kinematics after stepping (`mj_kinematics`, which
  touches no state and so changes no trajectory), so the forward reward is the root free
  joint's displacement `(x' - x) / dt`, the quantity v5 documents.
- Rewards are Python floats (v5: `np.float64`, and an int for InvertedPendulum).
- Actions are validated: a wrong shape or a NaN/inf raises ValueError naming the expected shape.
  As in v5 they are not clipped: MuJoCo clamps the control to the actuator range
  (`ctrllimited`), and the control cost uses the action as given; `reward_fn` does the same.
- Construction takes only the v5 keyword arguments that keep the observation full-state and the
  semantics intact (reward weights, healthy ranges, `reset_noise_scale`, `frame_skip` with `dt`
  following it, and the rendering options); `xml_file` (a different model could move the
  coordinates the reward reads) and the observation-trimming options are refused with the
  valid list.
- `reset(options={"state": z})` starts from a given `[qpos, qvel]` (replaying datasets).
- `render_mode` is `None` or `"rgb_array"` (uint8 frames `(height, width, 3)`, default
  480 x 480). Offscreen rendering needs an OpenGL backend: on a headless machine set
  `MUJOCO_GL=egl` (Debian: `libegl1 libgl1-mesa-dri`) or `MUJOCO_GL=osmesa` (`libosmesa6`).
  Unset, Gymnasium tries GLFW first, which fails without a display before it falls back to EGL
  and leaves an "Exception ignored in GLContext.__del__" message on stderr.

`dt` (seconds between observations) is v5's `model.opt.timestep * frame_skip`; the registered
defaults are those of PROTOCOLS.md and are checked at construction: HalfCheetah 0.05,
Hopper 0.008, Walker2d 0.008, Swimmer 0.04, Ant 0.05, InvertedPendulum 0.04.
"""

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
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv
from numpy.typing import NDArray

from ._validation import check_action, check_state, strict_kwargs
from ._xp import as_batch, constant_like, is_torch, namespace, unbatch

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
        render_mode = kwargs.get("render_mode")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None"
            )
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


class HalfCheetahFullEnv(_FullStateEnv, HalfCheetahEnv):
    """HalfCheetah with full-state observations `[qpos, qvel]` (Gymnasium `HalfCheetah-v5`).

    A planar cat-like robot (torso, two thighs, two shins, two feet; 9 degrees of freedom)
    runs along x; six hinge motors drive the legs. Same model, physics, reward and
    termination as `HalfCheetah-v5`; only the observation differs (v5 drops `qpos[0]`).

    ## Observation: `Box(-inf, inf, (18,), float64)`, `q_dim = 9`, `state_layout = "qv"`

    | index | coordinate                         | joint  | unit  |
    |-------|------------------------------------|--------|-------|
    | 0     | torso x position                   | rootx  | m     |
    | 1     | torso z, from its initial height   | rootz  | m     |
    | 2     | torso angle (pitch)                | rooty  | rad   |
    | 3-5   | back thigh, shin, foot angles      | bthigh, bshin, bfoot | rad |
    | 6-8   | front thigh, shin, foot angles     | fthigh, fshin, ffoot | rad |
    | 9-17  | the velocities of 0-8 (`qvel`)     |        | m/s, rad/s |

    ## Action: `Box(-1, 1, (6,), float32)`

    Motor controls on bthigh, bshin, bfoot, fthigh, fshin, ffoot; torque = gear * action with
    gears 120, 90, 60, 120, 60, 30 N m. Out-of-range actions are clamped by MuJoCo
    (`ctrllimited`) but enter the control cost unclamped, as in v5.

    ## Reward (from `obs`, `action`, `next_obs`; what `reward_fn` computes)

    `r = forward_reward_weight * (next_obs[0] - obs[0]) / dt
    - ctrl_cost_weight * sum(action ** 2)`, weights 1 and 0.1 by default.

    ## Starting state

    `qpos ~ U[-0.1, 0.1]^9`, `qvel ~ 0.1 N(0, 1)^9` (`reset_noise_scale = 0.1`), exactly v5's
    draw: the same seed gives the same initial state as `HalfCheetah-v5`.
    `reset(options={"state": z})` starts from `z` instead.

    ## Episode end

    Never terminates (`termination_fn` is all False); the registration's `TimeLimit` truncates
    after 1000 steps.

    ## Ground truth and dt

    MuJoCo, semi-implicit Euler with timestep 0.01 s, `frame_skip = 5` substeps per step:
    `dt = 0.05` s. `frame_skip` may be set; `dt` and the reward follow it.

    ## Arguments

    `frame_skip`, `forward_reward_weight`, `ctrl_cost_weight`, `reset_noise_scale` (v5's
    meaning and defaults) and the rendering options `render_mode` (None or "rgb_array"),
    `width`, `height`, `camera_id`, `camera_name`, `default_camera_config`, `max_geom`,
    `visual_options`. Anything else (`xml_file`,
    `exclude_current_positions_from_observation`) raises TypeError.

    Note: compiling `half_cheetah.xml` makes MuJoCo 4 warn "compiler attribute
    'settotalmass' is deprecated ..." (on stderr and into `MUJOCO_LOG.TXT` in the working
    directory) through its C warning handler, which Python's `warnings` filters never see. It
    is harmless: the model still scales its masses to a total of 14 kg. Compiling without the
    attribute and calling `mj_setTotalmass` + `mj_setConst` instead would give a different
    `stat.meaninertia` (which scales the constraint solver's tolerance) and so, strictly,
    different physics from v5; so the compile runs under a MuJoCo warning handler that drops
    exactly that message and passes any other on (`_without_settotalmass_warning`).

    ## Version history

    - v0: initial version (on Gymnasium 1.4's HalfCheetah-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/HalfCheetahFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.dt, env.unwrapped.q_dim
    ((18,), 0.05, 9)
    """

    base_env_id = "HalfCheetah-v5"
    _protocol_dt = 0.05
    _default_frame_skip = 5

    @_full_state_init
    def __init__(
        self,
        *,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 0.1,
        reset_noise_scale: float = 0.1,
        **render_kwargs: Any,
    ) -> None:
        with _without_settotalmass_warning():
            HalfCheetahEnv.__init__(
                self,
                frame_skip=frame_skip,
                forward_reward_weight=forward_reward_weight,
                ctrl_cost_weight=ctrl_cost_weight,
                reset_noise_scale=reset_noise_scale,
                exclude_current_positions_from_observation=False,
                **render_kwargs,
            )

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        return self._forward_reward(obs, next_obs) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return _falses(next_obs, tuple(next_obs.shape[:-1]))


class HopperFullEnv(_FullStateEnv, HopperEnv):
    """Hopper with full-state, unclipped observations `[qpos, qvel]` (Gymnasium `Hopper-v5`).

    A planar one-legged robot (torso, thigh, leg, foot; 6 degrees of freedom) hops along x,
    driven by three hinge motors. Same model, physics, reward and termination as `Hopper-v5`;
    only the observation differs (v5 drops `qpos[0]` and clips `qvel` to [-10, 10]).

    ## Observation: `Box(-inf, inf, (12,), float64)`, `q_dim = 6`, `state_layout = "qv"`

    | index | coordinate                     | joint       | unit  |
    |-------|--------------------------------|-------------|-------|
    | 0     | root x position                | rootx       | m     |
    | 1     | root z position (height)       | rootz       | m     |
    | 2     | torso angle                    | rooty       | rad   |
    | 3     | thigh angle                    | thigh_joint | rad   |
    | 4     | leg angle                      | leg_joint   | rad   |
    | 5     | foot angle                     | foot_joint  | rad   |
    | 6-11  | the velocities of 0-5 (`qvel`), unclipped |  | m/s, rad/s |

    ## Action: `Box(-1, 1, (3,), float32)`

    Motor controls on thigh_joint, leg_joint, foot_joint; torque = 200 * action N m.
    Out-of-range actions are clamped by MuJoCo but enter the control cost unclamped, as in v5.

    ## Reward (from `obs`, `action`, `next_obs`; what `reward_fn` computes)

    `r = forward_reward_weight * (next_obs[0] - obs[0]) / dt
    + healthy_reward * healthy(next_obs) - ctrl_cost_weight * sum(action ** 2)`,
    weights 1, 1, 1e-3 by default, where `healthy(z)` holds iff every entry of `z[2:]`
    (qpos[2:] and the unclipped qvel) lies strictly inside `healthy_state_range` (-100, 100),
    `z[1]` strictly inside `healthy_z_range` (0.7, inf) and `z[2]` strictly inside
    `healthy_angle_range` (-0.2, 0.2).

    ## Starting state

    `qpos = [0, 1.25, 0, 0, 0, 0] + U[-5e-3, 5e-3]^6`, `qvel ~ U[-5e-3, 5e-3]^6`
    (`reset_noise_scale = 5e-3`), v5's draw: the same seed gives the same state as `Hopper-v5`.
    `reset(options={"state": z})` starts from `z` instead.

    ## Episode end

    Terminates when `not healthy(next_obs)` (if `terminate_when_unhealthy`, the default);
    the `TimeLimit` truncates after 1000 steps.

    ## Ground truth and dt

    MuJoCo, RK4 with timestep 0.002 s, `frame_skip = 4`: `dt = 0.008` s.

    ## Arguments

    `frame_skip`, `forward_reward_weight`, `ctrl_cost_weight`, `healthy_reward`,
    `terminate_when_unhealthy`, `healthy_state_range`, `healthy_z_range`,
    `healthy_angle_range`, `reset_noise_scale` (v5's meaning and defaults) and the rendering
    options (see `HalfCheetahFullEnv`). Anything else raises TypeError.

    ## Version history

    - v0: initial version (on Gymnasium 1.4's Hopper-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/HopperFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.dt
    ((12,), 0.008)
    """

    base_env_id = "Hopper-v5"
    _protocol_dt = 0.008
    _default_frame_skip = 4

    @_full_state_init
    def __init__(
        self,
        *,
        frame_skip: int = 4,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 1e-3,
        healthy_reward: float = 1.0,
        terminate_when_unhealthy: bool = True,
        healthy_state_range: tuple[float, float] = (-100.0, 100.0),
        healthy_z_range: tuple[float, float] = (0.7, float("inf")),
        healthy_angle_range: tuple[float, float] = (-0.2, 0.2),
        reset_noise_scale: float = 5e-3,
        **render_kwargs: Any,
    ) -> None:
        HopperEnv.__init__(
            self,
            frame_skip=frame_skip,
            forward_reward_weight=forward_reward_weight,
            ctrl_cost_weight=ctrl_cost_weight,
            healthy_reward=healthy_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            healthy_state_range=healthy_state_range,
            healthy_z_range=healthy_z_range,
            healthy_angle_range=healthy_angle_range,
            reset_noise_scale=reset_noise_scale,
            exclude_current_positions_from_observation=False,
            **render_kwargs,
        )

    def _healthy(self, z: Any) -> Any:
        xp = namespace(z)
        lo, hi = self._healthy_state_range
        z_lo, z_hi = self._healthy_z_range
        a_lo, a_hi = self._healthy_angle_range
        state = z[..., 2:]
        return (
            xp.all((lo < state) & (state < hi), axis=-1)
            & (z_lo < z[..., 1])
            & (z[..., 1] < z_hi)
            & (a_lo < z[..., 2])
            & (z[..., 2] < a_hi)
        )

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        healthy = self._healthy_term(self._healthy(next_obs), next_obs)
        return (self._forward_reward(obs, next_obs) + healthy) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return self._unhealthy_terminates(self._healthy(next_obs))


class Walker2dFullEnv(_FullStateEnv, Walker2dEnv):
    """Walker2d with full-state, unclipped observations `[qpos, qvel]` (`Walker2d-v5`).

    A planar two-legged robot (torso; thigh, leg, foot on each side; 9 degrees of freedom)
    walks along x, driven by six hinge motors. Same model (`walker2d_v5.xml`), physics, reward
    and termination as `Walker2d-v5`; only the observation differs (v5 drops `qpos[0]` and clips
    `qvel` to [-10, 10]).

    ## Observation: `Box(-inf, inf, (18,), float64)`, `q_dim = 9`, `state_layout = "qv"`

    | index | coordinate                          | joint                   | unit  |
    |-------|-------------------------------------|-------------------------|-------|
    | 0     | root x position                     | rootx                   | m     |
    | 1     | root z position (height)            | rootz                   | m     |
    | 2     | torso angle                         | rooty                   | rad   |
    | 3-5   | right thigh, leg, foot angles       | thigh/leg/foot_joint    | rad   |
    | 6-8   | left thigh, leg, foot angles        | *_left_joint            | rad   |
    | 9-17  | the velocities of 0-8, unclipped    |                         | m/s, rad/s |

    ## Action: `Box(-1, 1, (6,), float32)`

    Motor controls on the right thigh, leg, foot, then the left ones; torque = 100 * action
    N m. Out-of-range actions are clamped by MuJoCo but enter the control cost unclamped.

    ## Reward (from `obs`, `action`, `next_obs`; what `reward_fn` computes)

    `r = forward_reward_weight * (next_obs[0] - obs[0]) / dt
    + healthy_reward * healthy(next_obs) - ctrl_cost_weight * sum(action ** 2)`,
    weights 1, 1, 1e-3 by default, where `healthy(z)` holds iff `z[1]` lies strictly inside
    `healthy_z_range` (0.8, 2.0) and `z[2]` strictly inside `healthy_angle_range` (-1, 1).

    ## Starting state

    `qpos = [0, 1.25, 0, ..., 0] + U[-5e-3, 5e-3]^9`, `qvel ~ U[-5e-3, 5e-3]^9`, v5's draw
    (same seed, same state as `Walker2d-v5`); or `reset(options={"state": z})`.

    ## Episode end

    Terminates when `not healthy(next_obs)` (if `terminate_when_unhealthy`, the default);
    the `TimeLimit` truncates after 1000 steps.

    ## Ground truth and dt

    MuJoCo, RK4 with timestep 0.002 s, `frame_skip = 4`: `dt = 0.008` s.

    ## Arguments

    `frame_skip`, `forward_reward_weight`, `ctrl_cost_weight`, `healthy_reward`,
    `terminate_when_unhealthy`, `healthy_z_range`, `healthy_angle_range`,
    `reset_noise_scale` and the rendering options. Anything else raises TypeError.

    ## Version history

    - v0: initial version (on Gymnasium 1.4's Walker2d-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/Walker2dFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.dt
    ((18,), 0.008)
    """

    base_env_id = "Walker2d-v5"
    _protocol_dt = 0.008
    _default_frame_skip = 4

    @_full_state_init
    def __init__(
        self,
        *,
        frame_skip: int = 4,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 1e-3,
        healthy_reward: float = 1.0,
        terminate_when_unhealthy: bool = True,
        healthy_z_range: tuple[float, float] = (0.8, 2.0),
        healthy_angle_range: tuple[float, float] = (-1.0, 1.0),
        reset_noise_scale: float = 5e-3,
        **render_kwargs: Any,
    ) -> None:
        Walker2dEnv.__init__(
            self,
            frame_skip=frame_skip,
            forward_reward_weight=forward_reward_weight,
            ctrl_cost_weight=ctrl_cost_weight,
            healthy_reward=healthy_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            healthy_z_range=healthy_z_range,
            healthy_angle_range=healthy_angle_range,
            reset_noise_scale=reset_noise_scale,
            exclude_current_positions_from_observation=False,
            **render_kwargs,
        )

    def _healthy(self, z: Any) -> Any:
        z_lo, z_hi = self._healthy_z_range
        a_lo, a_hi = self._healthy_angle_range
        return (z_lo < z[..., 1]) & (z[..., 1] < z_hi) & (a_lo < z[..., 2]) & (z[..., 2] < a_hi)

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        healthy = self._healthy_term(self._healthy(next_obs), next_obs)
        return (self._forward_reward(obs, next_obs) + healthy) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return self._unhealthy_terminates(self._healthy(next_obs))


class SwimmerFullEnv(_FullStateEnv, SwimmerEnv):
    """Swimmer with full-state observations `[qpos, qvel]` (Gymnasium `Swimmer-v5`).

    A three-segment planar swimmer in a viscous fluid (5 degrees of freedom: x, y, heading and
    two hinges), driven by two hinge motors. Same model, physics, reward and termination as
    `Swimmer-v5`; only the observation differs (v5 drops `qpos[0:2]`).

    ## Observation: `Box(-inf, inf, (10,), float64)`, `q_dim = 5`, `state_layout = "qv"`

    | index | coordinate                        | joint          | unit  |
    |-------|-----------------------------------|----------------|-------|
    | 0     | front tip x position              | slider1        | m     |
    | 1     | front tip y position              | slider2        | m     |
    | 2     | heading of the front segment      | free_body_rot  | rad   |
    | 3     | first hinge angle                 | motor1_rot     | rad   |
    | 4     | second hinge angle                | motor2_rot     | rad   |
    | 5-9   | the velocities of 0-4 (`qvel`)    |                | m/s, rad/s |

    ## Action: `Box(-1, 1, (2,), float32)`

    Motor controls on motor1_rot and motor2_rot; torque = 150 * action N m. Out-of-range
    actions are clamped by MuJoCo but enter the control cost unclamped, as in v5.

    ## Reward (from `obs`, `action`, `next_obs`; what `reward_fn` computes)

    `r = forward_reward_weight * (next_obs[0] - obs[0]) / dt
    - ctrl_cost_weight * sum(action ** 2)`, weights 1 and 1e-4 by default.

    ## Starting state

    `qpos ~ U[-0.1, 0.1]^5`, `qvel ~ U[-0.1, 0.1]^5`, v5's draw (same seed, same state as
    `Swimmer-v5`); or `reset(options={"state": z})`.

    ## Episode end

    Never terminates; the `TimeLimit` truncates after 1000 steps.

    ## Ground truth and dt

    MuJoCo, RK4 with timestep 0.01 s, `frame_skip = 4`: `dt = 0.04` s.

    ## Arguments

    `frame_skip`, `forward_reward_weight`, `ctrl_cost_weight`, `reset_noise_scale` and the
    rendering options. Anything else raises TypeError.

    ## Version history

    - v0: initial version (on Gymnasium 1.4's Swimmer-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/SwimmerFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.dt
    ((10,), 0.04)
    """

    base_env_id = "Swimmer-v5"
    _protocol_dt = 0.04
    _default_frame_skip = 4

    @_full_state_init
    def __init__(
        self,
        *,
        frame_skip: int = 4,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 1e-4,
        reset_noise_scale: float = 0.1,
        **render_kwargs: Any,
    ) -> None:
        SwimmerEnv.__init__(
            self,
            frame_skip=frame_skip,
            forward_reward_weight=forward_reward_weight,
            ctrl_cost_weight=ctrl_cost_weight,
            reset_noise_scale=reset_noise_scale,
            exclude_current_positions_from_observation=False,
            **render_kwargs,
        )

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        return self._forward_reward(obs, next_obs) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return _falses(next_obs, tuple(next_obs.shape[:-1]))


class AntFullEnv(_FullStateEnv, AntEnv):
    """Ant with full-state observations `[qpos, qvel]` (Gymnasium `Ant-v5`), no contact cost.

    A quadruped (a torso on a free joint, four legs with a hip and an ankle hinge each;
    `nq = 15` positions, `nv = 14` velocities) walks on a plane, driven by eight hinge motors.
    Same model and physics as `Ant-v5`; the observation is `[qpos, qvel]` (v5 drops `qpos[0:2]`
    and appends clipped external contact forces).

    ## Observation: `Box(-inf, inf, (29,), float64)`, `q_dim = 15`, `v_dim = 14`

    `state_layout = "qv"`, but note `q_dim != v_dim`: the free joint has a 4-number quaternion
    position and a 3-number angular velocity.

    | index | coordinate                                           | unit  |
    |-------|------------------------------------------------------|-------|
    | 0-2   | torso position x, y, z (free joint `root`)           | m     |
    | 3-6   | torso orientation, unit quaternion (w, x, y, z)      |       |
    | 7-14  | hinge angles hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3, hip_4, ankle_4 | rad |
    | 15-17 | torso linear velocity, world frame                   | m/s   |
    | 18-20 | torso angular velocity, body frame                   | rad/s |
    | 21-28 | hinge angular velocities, order of 7-14              | rad/s |

    ## Action: `Box(-1, 1, (8,), float32)`

    Motor controls on hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3 (v5's
    order); torque = 150 * action N m. Out-of-range actions are clamped by MuJoCo but enter the
    control cost unclamped, as in v5.

    ## Reward (from `obs`, `action`, `next_obs`; what `reward_fn` computes)

    `r = forward_reward_weight * (next_obs[0] - obs[0]) / dt
    + healthy_reward * healthy(next_obs) - ctrl_cost_weight * sum(action ** 2)`,
    weights 1, 1, 0.5 by default, where `healthy(z)` holds iff every entry of `z` is finite and
    `healthy_z_range[0] <= z[2] <= healthy_z_range[1]` (0.2, 1.0), bounds included as in v5.

    Differences from v5's reward, both because v5 uses quantities that are not functions of the
    state `[q, v]`:

    - no contact cost (v5: `5e-4 * |clip(cfrc_ext, -1, 1)|^2`, contact forces from the
      transition); `contact_cost_weight` is fixed at 0 and not accepted.
    - the forward term uses the torso position `qpos[0]`. v5 reads `data.body("torso").xpos`,
      which `mj_step` leaves one substep stale; here the kinematics are refreshed after each
      step (no effect on the trajectory), so v5's own step code measures `qpos[0]`. Per step
      the two differ by O(0.01) m/s; over an episode the forward terms telescope, so returns
      differ only by the last step's lag.

    ## Starting state

    `qpos = [0, 0, 0.75, 1, 0, ..., 0] + U[-0.1, 0.1]^15` (the quaternion is not renormalised,
    as in v5), `qvel ~ 0.1 N(0, 1)^14`, v5's draw (same seed, same state as `Ant-v5`); or
    `reset(options={"state": z})`.

    ## Episode end

    Terminates when `not healthy(next_obs)` (if `terminate_when_unhealthy`, the default);
    the `TimeLimit` truncates after 1000 steps.

    ## Ground truth and dt

    MuJoCo, RK4 with timestep 0.01 s, `frame_skip = 5`: `dt = 0.05` s.

    ## Arguments

    `frame_skip`, `forward_reward_weight`, `ctrl_cost_weight`, `healthy_reward`,
    `terminate_when_unhealthy`, `healthy_z_range`, `reset_noise_scale` and the rendering
    options. Refused (TypeError): `contact_cost_weight`, `contact_force_range`, `main_body`,
    `include_cfrc_ext_in_observation`, `exclude_current_positions_from_observation`,
    `xml_file`.

    ## Version history

    - v0: initial version (on Gymnasium 1.4's Ant-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/AntFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.q_dim, env.unwrapped.v_dim, env.unwrapped.dt
    ((29,), 15, 14, 0.05)
    """

    base_env_id = "Ant-v5"
    _protocol_dt = 0.05
    _default_frame_skip = 5

    @_full_state_init
    def __init__(
        self,
        *,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 0.5,
        healthy_reward: float = 1.0,
        terminate_when_unhealthy: bool = True,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        reset_noise_scale: float = 0.1,
        **render_kwargs: Any,
    ) -> None:
        AntEnv.__init__(
            self,
            frame_skip=frame_skip,
            forward_reward_weight=forward_reward_weight,
            ctrl_cost_weight=ctrl_cost_weight,
            contact_cost_weight=0.0,
            healthy_reward=healthy_reward,
            terminate_when_unhealthy=terminate_when_unhealthy,
            healthy_z_range=healthy_z_range,
            reset_noise_scale=reset_noise_scale,
            exclude_current_positions_from_observation=False,
            include_cfrc_ext_in_observation=False,
            **render_kwargs,
        )

    def _step_mujoco_simulation(self, ctrl: Any, n_frames: int) -> None:
        super()._step_mujoco_simulation(ctrl, n_frames)
        # mj_step computes the kinematics before integrating, so body xpos lags qpos by one
        # substep; v5's forward reward reads xpos. Recomputing the kinematics from the final
        # qpos makes the torso's xpos equal qpos[0:3] (a free joint) and changes no state.
        mujoco.mj_kinematics(self.model, self.data)

    def _healthy(self, z: Any) -> Any:
        xp = namespace(z)
        z_lo, z_hi = self._healthy_z_range
        return xp.all(xp.isfinite(z), axis=-1) & (z_lo <= z[..., 2]) & (z[..., 2] <= z_hi)

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        healthy = self._healthy_term(self._healthy(next_obs), next_obs)
        return (self._forward_reward(obs, next_obs) + healthy) - self._ctrl_cost(action)

    def _terminated(self, next_obs: Any) -> Any:
        return self._unhealthy_terminates(self._healthy(next_obs))


class InvertedPendulumFullEnv(_FullStateEnv, InvertedPendulumEnv):
    """InvertedPendulum (Gymnasium `InvertedPendulum-v5`) with the shared full-state contract.

    A cart on a rail (limited to [-1, 1] m) carries a hinged pole; a motor pushes the cart.
    v5's observation is already `[qpos, qvel]`; the variant exists for the shared contract
    (`dt`, `q_dim`, `reward_fn`, `termination_fn`, strict kwargs, action checks,
    `reset(options={"state": z})`); physics, reward and termination are v5's.

    ## Observation: `Box(-inf, inf, (4,), float64)`, `q_dim = 2`, `state_layout = "qv"`

    | index | coordinate                 | joint  | unit  |
    |-------|----------------------------|--------|-------|
    | 0     | cart position              | slider | m     |
    | 1     | pole angle from upright    | hinge  | rad   |
    | 2     | cart velocity              | slider | m/s   |
    | 3     | pole angular velocity      | hinge  | rad/s |

    ## Action: `Box(-3, 3, (1,), float32)`

    Motor control on the slider; force on the cart = 100 * action N (gear 100). v5's range is
    kept, not normalised to [-1, 1], so that data and policies transfer between the two envs
    (SB3's `check_env` warns about the range; SB3's algorithms rescale it themselves).
    Out-of-range actions are clamped by MuJoCo.

    ## Reward (from `next_obs`; what `reward_fn` computes)

    `r = 1.0` if the step does not terminate, else `0.0` (v5: `int(not terminated)`).

    ## Starting state

    `qpos, qvel ~ U[-0.01, 0.01]^2` (`reset_noise_scale = 0.01`), v5's draw (same seed, same
    state as `InvertedPendulum-v5`); or `reset(options={"state": z})`.

    ## Episode end

    Terminates when an entry of `next_obs` is not finite or `|next_obs[1]| > 0.2` rad;
    the `TimeLimit` truncates after 1000 steps.

    ## Ground truth and dt

    MuJoCo, RK4 with timestep 0.02 s, `frame_skip = 2`: `dt = 0.04` s.

    ## Arguments

    `frame_skip`, `reset_noise_scale` and the rendering options. Anything else raises
    TypeError.

    ## Version history

    - v0: initial version (on Gymnasium 1.4's InvertedPendulum-v5, MuJoCo 4.0).

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/InvertedPendulumFull-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.unwrapped.dt, env.action_space.high
    ((4,), 0.04, array([3.], dtype=float32))
    """

    base_env_id = "InvertedPendulum-v5"
    _protocol_dt = 0.04
    _default_frame_skip = 2

    @_full_state_init
    def __init__(
        self, *, frame_skip: int = 2, reset_noise_scale: float = 0.01, **render_kwargs: Any
    ) -> None:
        InvertedPendulumEnv.__init__(
            self, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale, **render_kwargs
        )

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        return constant_like(1.0, next_obs) * ~self._terminated(next_obs)

    def _terminated(self, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        return ~xp.all(xp.isfinite(next_obs), axis=-1) | (xp.abs(next_obs[..., 1]) > 0.2)


__all__ = [
    "RENDER_KWARGS",
    "AntFullEnv",
    "HalfCheetahFullEnv",
    "HopperFullEnv",
    "InvertedPendulumFullEnv",
    "SwimmerFullEnv",
    "Walker2dFullEnv",
]
