"""`Walker2dFullEnv`: Gymnasium's `Walker2d-v5` with the full state `[qpos, qvel]` as its
observation."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from ._full_state import _full_state_init, _HealthyFullStateEnv, _upright


class Walker2dFullEnv(_HealthyFullStateEnv, Walker2dEnv):
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
        return _upright(z, self._healthy_z_range, self._healthy_angle_range)


__all__ = ["Walker2dFullEnv"]
