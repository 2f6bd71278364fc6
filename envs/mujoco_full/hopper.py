"""`HopperFullEnv`: Gymnasium's `Hopper-v5` with the full state `[qpos, qvel]` as its
observation."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.hopper_v5 import HopperEnv

from ._full_state import _full_state_init, _HealthyFullStateEnv, _upright


class HopperFullEnv(_HealthyFullStateEnv, HopperEnv):
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
        lo, hi = self._healthy_state_range
        state = z[..., 2:]
        in_range = ((lo < state) & (state < hi)).all(axis=-1)
        return in_range & _upright(z, self._healthy_z_range, self._healthy_angle_range)


__all__ = ["HopperFullEnv"]
