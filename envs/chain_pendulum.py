"""The k-link chain pendulum of decon-hnn (Gruver et al. 2022, section 4), angular coordinates."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._integrate import adaptive_step
from ._render import PALETTE, Canvas
from ._validation import strict_kwargs
from ._xp import constant_like, namespace

#: Gravitational acceleration (m s^-2), as in the authors' code.
GRAVITY = 9.81
#: Seconds between observations, as in the authors' code (`ChainPendulum.dt = .03`).
DT = 0.03
#: Drag coefficient lambda of the papers' damped experiments (PROTOCOLS.md; the code used 0.5).
PAPER_DRAG = 0.4
#: Weight of the quadratic control cost in the reward.
CONTROL_COST = 0.01


def authors_draws(count: int) -> list[float]:
    """The authors' parameter draws `0.6 + 0.8 U[0, 1]` under numpy's legacy seed 0, in order.

    The authors call `np.random.rand()` inside `FixedNumpySeed(0)`, that is, numpy's global
    legacy Mersenne Twister seeded with 0; a private `RandomState(0)` gives the same stream
    without touching the global state.
    """
    stream = np.random.RandomState(0)
    return [0.6 + 0.8 * float(stream.rand()) for _ in range(count)]


class ChainPendulumEnv(PhysicsEnv):
    r"""A chain of `links` point masses on massless rigid rods, hinged at the origin.

    ## Description

    The kChainPendulum of decon-hnn (section 4; Finzi et al. 2020): bob `i` (0-based) of mass
    `m_i` hangs from bob `i - 1` (bob `-1` is the fixed pivot at the origin) on a rigid massless
    rod of length `l_i`, in a vertical plane. The state is in angular coordinates: `theta_i` is
    the absolute angle of rod `i` from the downward vertical, counter-clockwise positive, so

        x_i = sum_{j <= i} l_j sin(theta_j),    y_i = -sum_{j <= i} l_j cos(theta_j).

    With `mu_i = sum_{n >= i} m_n` (the mass hanging from rod `i`), the mass matrix is
    `M_jk(theta) = mu_max(j,k) l_j l_k cos(theta_j - theta_k)`, the canonical momenta are
    `p = M(theta) theta_dot`, and

        H(theta, p) = p^T M(theta)^-1 p / 2 + V(theta),   V = g sum_i m_i y_i
                    = p^T M^-1 p / 2 - g sum_i mu_i l_i cos(theta_i).

    Equations of motion, with `theta_dot = M^-1 p`, drag `lambda` and generalised forces `Q`:

        d theta_i / dt = theta_dot_i
        d p_i / dt     = -dH/dtheta_i + Q_i - lambda theta_dot_i
                       = -theta_dot_i sum_k mu_max(i,k) l_i l_k sin(theta_i - theta_k) theta_dot_k
                         - g mu_i l_i sin(theta_i) + Q_i - lambda theta_dot_i.

    Parameters (the authors' values): `g = 9.81` m s^-2; masses `m_i` (kg) and lengths `l_i`
    (m) are `0.6 + 0.8 U[0, 1]` drawn once under numpy's legacy seed 0, first `links` masses,
    then `links` lengths. The authors' code hands them out with `list.pop()`, so link 0 gets
    the *last* mass drawn and the last length drawn; we reproduce that exactly. For
    `links = 2`: `masses = [1.1722, 1.0391]`, `lengths = [1.0359, 1.0822]`. They are exposed
    as `env.unwrapped.masses` and `env.unwrapped.lengths`.

    ## Observation Space

    `ndarray` of shape `(2 * links,)`, float64, unbounded (angles are not wrapped: the
    observation is the integrated state):

    | Num              | Observation                                       | Unit       |
    |------------------|---------------------------------------------------|------------|
    | 0 .. k-1         | `theta_i`, absolute angle of rod `i` from below   | rad        |
    | k .. 2k-1        | `p_i`, canonical momentum conjugate to `theta_i`  | kg m^2 s^-1 |

    `q_dim = links`, `state_layout = "qp"`.

    ## Action Space

    `Box(-1, 1, (links,), float32)`. Action `a_i` is the generalised force
    `Q_i = force_scale * a_i` (N m) conjugate to the absolute angle `theta_i`: an external
    torque on rod `i` about its upper end, referenced to the ground (not a motor between two
    rods, which would act on two angles with opposite signs). Out-of-range actions are clipped.

    | Num | Action                          | Min          | Max         |
    |-----|---------------------------------|--------------|-------------|
    | i   | torque `Q_i` on `theta_i` (N m) | -force_scale | force_scale |

    ## Rewards

    Swing-up: the height of the chain's tip after the step, normalised by the chain's length,
    minus a small quadratic control cost,

        r = y_tip(next_obs) / sum_i l_i - 0.01 * sum_i a_i^2,

    in `[-1 - 0.01 links, 1]`; 1 is the chain balanced straight up with no effort.

    ## Starting State

    As in PROTOCOLS.md: angles and angular velocities i.i.d. `N(0, 1)` (rad, rad s^-1), the
    velocities converted to canonical momenta `p = M(theta) theta_dot`.

    ## Episode End

    The environment never terminates; registration truncates after 300 steps.

    ## Ground Truth

    SciPy's DOP853 over each `dt = 0.03` s, with `rtol = atol = 1e-10` (tighter than the
    papers' `rtol <= 1e-7`) and the action held constant. The relative energy error over 1,000
    zero-action steps stays below 1e-8 (about 1e-11 to 1e-8 across seeds).

    ## Arguments

    - `links` (int, default 2): number of links `k >= 1`.
    - `drag` (float, default 0.0): drag coefficient `lambda` (kg m^2 s^-1) in
      `dp/dt = -dH/dq - lambda theta_dot`; 0 is the conservative system. The papers' damped
      experiments (Figure 6) use `lambda = 0.4` (`PAPER_DRAG`).
    - `force_scale` (float, default 5.0): largest torque (N m) an action can apply.
    - `render_mode` (None or "rgb_array").

    ## Differences From The Paper's Code

    - The authors integrate in Cartesian coordinates with constraints and sample initial states
      by perturbing Cartesian positions and velocities and projecting back onto the
      constraints; we integrate the same system in its angular coordinates and sample angles
      and angular velocities from `N(0, 1)` as PROTOCOLS.md states.
    - Drag is `0.4` in PROTOCOLS.md and `0.5` in the authors' code; we take PROTOCOLS.md's
      value as the documented default of the damped variant and leave drag off by default.
    - Actions (torques) and the reward are ours; a zero action is the papers' system.

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/ChainPendulum-v0", links=3, drag=0.4)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (6,)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> bool(env.unwrapped.energy(obs) < 0.0)  # hanging low: gravity dominates
    True
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        links: int = 2,
        drag: float = 0.0,
        force_scale: float = 5.0,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(links, bool) or not isinstance(links, (int, np.integer)) or links < 1:
            raise ValueError(f"links must be an integer >= 1, got {links!r}")
        if not np.isfinite(drag) or drag < 0:
            raise ValueError(f"drag must be a finite number >= 0, got {drag!r}")
        if not np.isfinite(force_scale) or force_scale <= 0:
            raise ValueError(f"force_scale must be a finite number > 0, got {force_scale!r}")
        k = int(links)
        super().__init__(
            q_dim=k, action_dim=k, dt=DT, force_scale=force_scale, render_mode=render_mode
        )
        self.links = k
        self.drag = float(drag)
        self.gravity = GRAVITY
        draws = authors_draws(2 * k)
        # The authors pop from the end of each list: link 0 gets the last draw.
        self.masses: FloatArray = np.array(draws[:k][::-1])
        self.lengths: FloatArray = np.array(draws[k:][::-1])
        self.masses.setflags(write=False)
        self.lengths.setflags(write=False)
        hanging = np.cumsum(self.masses[::-1])[::-1]  # mu_i = sum_{n >= i} m_n
        # M(theta) = coupling * cos(theta_j - theta_k); coupling_jk = mu_max(j,k) l_j l_k.
        index = np.arange(k)
        self._coupling = (
            hanging[np.maximum(index[:, None], index[None, :])]
            * self.lengths[:, None]
            * self.lengths[None, :]
        )
        # V = -sum_i gravity_torque_i cos(theta_i); gravity_torque_i = g mu_i l_i (N m).
        self._gravity_torque = GRAVITY * hanging * self.lengths
        self.total_length = float(self.lengths.sum())
        # A writable copy: torch warns when it wraps a read-only array (`constant_like`).
        self._lengths = self.lengths.copy()

    # ------------------------------------------------------------------ physics
    def mass_matrix(self, theta: Any) -> Any:
        """`M(theta)` `(..., k, k)` (kg m^2) of angles `(..., k)` (rad); numpy or torch."""
        xp = namespace(theta)
        coupling = constant_like(self._coupling, theta)
        return coupling * xp.cos(theta[..., :, None] - theta[..., None, :])

    def vector_field(self, state: FloatArray, force: FloatArray) -> FloatArray:
        """`dz/dt` `(2k,)` of one state `(2k,)` under generalised forces `force` `(k,)` (N m)."""
        k = self.links
        theta, p = state[:k], state[k:]
        diff = theta[:, None] - theta[None, :]
        theta_dot = np.linalg.solve(self._coupling * np.cos(diff), p)
        # -dT/dtheta_i at fixed p is +theta_dot^T (dM/dtheta_i) theta_dot / 2; only row and
        # column i of M depend on theta_i, which leaves this antisymmetric coupling.
        velocity_coupling = (self._coupling * np.sin(diff)) @ theta_dot
        p_dot = (
            -theta_dot * velocity_coupling
            - self._gravity_torque * np.sin(theta)
            + force
            - self.drag * theta_dot
        )
        return np.concatenate([theta_dot, p_dot])

    def bob_positions(self, theta: FloatArray) -> FloatArray:
        """Cartesian positions `(k, 2)` (m) of the bobs for angles `(k,)` (rad)."""
        offsets = np.stack([np.sin(theta), -np.cos(theta)], axis=-1) * self.lengths[:, None]
        positions: FloatArray = np.cumsum(offsets, axis=0)
        return positions

    # ------------------------------------------------------------------ pure parts
    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        theta = rng.standard_normal(self.links)
        theta_dot = rng.standard_normal(self.links)
        p = self.mass_matrix(theta) @ theta_dot
        return np.concatenate([theta, p])

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        force = self.force_scale * action
        return adaptive_step(lambda _t, z: self.vector_field(z, force), state, self.dt)

    def _energy(self, obs: Any) -> Any:
        xp = namespace(obs)
        k = self.links
        theta, p = obs[..., :k], obs[..., k:]
        theta_dot = xp.linalg.solve(self.mass_matrix(theta), p[..., None])[..., 0]
        kinetic = 0.5 * xp.sum(p * theta_dot, axis=-1)
        potential = -xp.sum(constant_like(self._gravity_torque, obs) * xp.cos(theta), axis=-1)
        return kinetic + potential

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        theta = next_obs[..., : self.links]
        tip_height = -xp.sum(constant_like(self._lengths, next_obs) * xp.cos(theta), axis=-1)
        return tip_height / self.total_length - CONTROL_COST * xp.sum(action * action, axis=-1)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        extent = 1.1 * self.total_length
        canvas = Canvas(self.render_size, extent)
        bobs = self.bob_positions(state[: self.links])
        joints = np.vstack([np.zeros((1, 2)), bobs])
        for start, end in pairwise(joints):
            canvas.segment(start, end, 0.02 * extent, (60, 60, 60))
        canvas.disc(np.zeros(2), 0.025 * extent, (0, 0, 0))
        for i, (bob, mass) in enumerate(zip(bobs, self.masses, strict=True)):
            canvas.disc(bob, 0.05 * extent * float(np.sqrt(mass)), PALETTE[i % len(PALETTE)])
        return canvas.image
