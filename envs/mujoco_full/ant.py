"""`AntFullEnv`: Gymnasium's `Ant-v5` with the full state `[qpos, qvel]` as its
observation."""

from __future__ import annotations

from typing import Any

import mujoco
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from .._xp import namespace
from ._full_state import _full_state_init, _HealthyFullStateEnv


class AntFullEnv(_HealthyFullStateEnv, AntEnv):
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
        return xp.isfinite(z).all(axis=-1) & (z_lo <= z[..., 2]) & (z[..., 2] <= z_hi)


__all__ = ["AntFullEnv"]
