"""`HalfCheetahFullEnv`: Gymnasium's `HalfCheetah-v5` with the full state `[qpos, qvel]` as its
observation."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from ._full_state import _ForwardFullStateEnv, _full_state_init, _without_settotalmass_warning


class HalfCheetahFullEnv(_ForwardFullStateEnv, HalfCheetahEnv):
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


__all__ = ["HalfCheetahFullEnv"]
