"""`SwimmerFullEnv`: Gymnasium's `Swimmer-v5` with the full state `[qpos, qvel]` as its
observation."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv

from ._full_state import _ForwardFullStateEnv, _full_state_init


class SwimmerFullEnv(_ForwardFullStateEnv, SwimmerEnv):
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


__all__ = ["SwimmerFullEnv"]
