"""`InvertedPendulumFullEnv`: Gymnasium's `InvertedPendulum-v5` with the full state
`[qpos, qvel]` as its observation."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.mujoco.inverted_pendulum_v5 import InvertedPendulumEnv

from .._xp import constant_like, namespace
from ._full_state import _full_state_init, _FullStateEnv


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
        return ~xp.isfinite(next_obs).all(axis=-1) | (xp.abs(next_obs[..., 1]) > 0.2)


__all__ = ["InvertedPendulumFullEnv"]
