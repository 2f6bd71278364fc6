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

Layout, as Gymnasium lays out its MuJoCo envs: one module per env (`half_cheetah`, `hopper`,
`walker2d`, `swimmer`, `ant`, `inverted_pendulum`), the machinery they share in
`_full_state` (the observation, checked construction, reward and termination terms, and the
healthy-body reward and termination of Hopper, Walker2d and Ant).
"""

from __future__ import annotations

from ._full_state import RENDER_KWARGS
from .ant import AntFullEnv
from .half_cheetah import HalfCheetahFullEnv
from .hopper import HopperFullEnv
from .inverted_pendulum import InvertedPendulumFullEnv
from .swimmer import SwimmerFullEnv
from .walker2d import Walker2dFullEnv

__all__ = [
    "RENDER_KWARGS",
    "AntFullEnv",
    "HalfCheetahFullEnv",
    "HopperFullEnv",
    "InvertedPendulumFullEnv",
    "SwimmerFullEnv",
    "Walker2dFullEnv",
]
