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
#: Drag coefficient lambda of the papers' damped experiments (the authors' `f_const = 0.4`).
PAPER_DRAG = 0.4
#: Where drag acts: on the angular velocity (the paper's text) or on every bob's Cartesian
#: momentum (the authors' code), which in angles is `-lambda M(theta) theta_dot = -lambda p`.
DRAG_FORMS = ("velocity", "momentum")
#: Initial-state distributions: PROTOCOLS.md's, or the authors' Cartesian draw.
STARTS = ("paper", "authors")
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
    - `drag` (float, default 0.0): drag coefficient `lambda` in
      `dp/dt = -dH/dq - lambda theta_dot` (kg m^2 s^-1); 0 is the conservative system. The
      papers' damped experiments (Figure 6) use `lambda = 0.4` (`PAPER_DRAG`).
    - `drag_form` (`"velocity"` or `"momentum"`, default `"velocity"`): `"momentum"` is the
      authors' drag, `-lambda` times every bob's Cartesian momentum, which in angles is
      `dp/dt = -dH/dq - lambda M(theta) theta_dot = -dH/dq - lambda p` (s^-1).
    - `start` (`"paper"` or `"authors"`, default `"paper"`): `"authors"` draws the initial
      state as the authors' code does: angles and angular velocities `N(0, 1)` mapped to the
      bobs' Cartesian positions and velocities, positions moved by `0.2 N(0, 1)`, velocities
      replaced by `3 (0.5 v + 0.4 N(0, 1))`, then projected back onto the rods (their
      Newton-Raphson projection, tolerance 1e-5) and mapped back to angles: about 3.4 times
      the kinetic energy of the `"paper"` draw.
    - `force_scale` (float, default 5.0): largest torque (N m) an action can apply.
    - `render_mode` (None or "rgb_array").

    ## Differences From The Paper's Code

    - The authors integrate in Cartesian coordinates with constraints; we integrate the same
      system in its angular coordinates. Their initial-state draw is `start="authors"`; the
      default samples angles and angular velocities from `N(0, 1)` as PROTOCOLS.md states.
    - Their drag acts on every bob's Cartesian momentum (`drag_form="momentum"`, with
      `f_const = 0.4` in their experiments, `0.5` as their class default); the default acts on
      the angular velocity, as the paper's text writes it. Drag is off by default.
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
        drag_form: str = "velocity",
        start: str = "paper",
        force_scale: float = 5.0,
        render_mode: str | None = None,
    ) -> None:
        if drag_form not in DRAG_FORMS:
            raise ValueError(f"drag_form must be one of {DRAG_FORMS}, got {drag_form!r}")
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
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
        self.drag_form = drag_form
        self.start = start
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
            - self.drag * (p if self.drag_form == "momentum" else theta_dot)
        )
        return np.concatenate([theta_dot, p_dot])

    def bob_positions(self, theta: FloatArray) -> FloatArray:
        """Cartesian positions `(k, 2)` (m) of the bobs for angles `(k,)` (rad)."""
        offsets = np.stack([np.sin(theta), -np.cos(theta)], axis=-1) * self.lengths[:, None]
        positions: FloatArray = np.cumsum(offsets, axis=0)
        return positions

    # ------------------------------------------------------------------ pure parts
    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        while True:
            theta = rng.standard_normal(self.links)
            theta_dot = rng.standard_normal(self.links)
            if self.start == "paper":
                break
            try:
                theta, theta_dot = self._authors_start(rng, theta, theta_dot)
                break
            except OverflowError:  # the projection failed: draw again, as the authors do
                continue
        p = self.mass_matrix(theta) @ theta_dot
        return np.concatenate([theta, p])

    def _authors_start(
        self, rng: np.random.Generator, theta: FloatArray, theta_dot: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """The authors' perturbation of a draw in Cartesian space (see `start`)."""
        k = self.links
        offsets = np.stack([np.sin(theta), -np.cos(theta)], axis=-1) * self.lengths[:, None]
        turns = np.stack([np.cos(theta), np.sin(theta)], axis=-1) * self.lengths[:, None]
        x = np.cumsum(offsets, axis=0) + 0.2 * rng.standard_normal((k, 2))
        v = np.cumsum(turns * theta_dot[:, None], axis=0)
        v = 3.0 * (0.5 * v + 0.4 * rng.standard_normal((k, 2)))
        x, v = project_onto_rods(x, v, self.lengths)
        rods = np.diff(x, axis=0, prepend=np.zeros((1, 2)))
        rod_velocities = np.diff(v, axis=0, prepend=np.zeros((1, 2)))
        angles = np.arctan2(rods[:, 0], -rods[:, 1])
        # On a rod of length l, x vy - y vx = l^2 theta_dot.
        cross = rods[:, 0] * rod_velocities[:, 1] - rods[:, 1] * rod_velocities[:, 0]
        return angles, cross / np.sum(rods * rods, axis=1)

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


def project_onto_rods(
    x: FloatArray, v: FloatArray, lengths: FloatArray, *, tol: float = 1e-5
) -> tuple[FloatArray, FloatArray]:
    """Bob positions and velocities `(k, 2)` moved onto the chain's rods.

    The authors' projection (`project_onto_constraints` of decon-hnn's `rigid_body.py`):
    Newton-Raphson steps of least norm on the constraints `|d_i|^2 = l_i^2` and
    `d_i . w_i = 0` (rod `i` spans `d_i = x_i - x_{i-1}` from the pivot, `w_i` its velocity),
    each step clamped to half the state's RMS, until the constraints' RMS is below `tol`.
    Raises OverflowError after 500 steps, as theirs (the caller draws again).
    """
    k = len(lengths)
    state = np.concatenate([x.ravel(), v.ravel()])  # (4k,): positions, then velocities
    for _ in range(500):
        pos, vel = state[: 2 * k].reshape(k, 2), state[2 * k :].reshape(k, 2)
        d = np.diff(pos, axis=0, prepend=np.zeros((1, 2)))
        w = np.diff(vel, axis=0, prepend=np.zeros((1, 2)))
        phi = np.concatenate([np.sum(d * d, axis=1) - lengths**2, 2.0 * np.sum(d * w, axis=1)])
        if np.sqrt(np.mean(phi * phi)) <= tol:
            return pos, vel
        blocks = np.zeros((2 * k, 2, k, 2))  # constraint, (position | velocity), bob, axis
        for i in range(k):
            blocks[i, 0, i], blocks[k + i, 0, i], blocks[k + i, 1, i] = 2 * d[i], 2 * w[i], 2 * d[i]
            if i > 0:
                blocks[i, 0, i - 1], blocks[k + i, 0, i - 1] = -2 * d[i], -2 * w[i]
                blocks[k + i, 1, i - 1] = -2 * d[i]
        jac = blocks.reshape(2 * k, 4 * k)
        step = jac.T @ np.linalg.solve(jac @ jac.T, -phi)
        scale = np.sqrt(np.mean(state * state))
        state = state + np.clip(step, -scale / 2, scale / 2)
    raise OverflowError("the projection onto the rods did not converge in 500 steps")
