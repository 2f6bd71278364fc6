"""Gravitational N-body systems in 2-D: the two-body (HNN task 4) and three-body problems."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._hgn_frames import HGN_COLOURS, blurred_discs, disc_radius_pixels
from ._integrate import adaptive_step
from ._render import PALETTE, Canvas
from ._validation import strict_kwargs
from ._xp import namespace


def _rotate(v: FloatArray, angle: float) -> FloatArray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


class _GravityEnv(PhysicsEnv):
    """Shared physics of N point masses under Newtonian gravity in the plane.

    `H = sum_i |p_i|^2 / (2 m_i) - sum_{i<j} G m_i m_j / |q_i - q_j|`, observation
    `[x1, y1, ..., xN, yN, px1, py1, ..., pxN, pyN]` (body-major), action a 2-D force on each
    body in the same order.
    """

    def __init__(
        self,
        *,
        n_bodies: int,
        masses: FloatArray,
        gravity: float,
        dt: float,
        force_scale: float,
        render_mode: str | None,
        render_size: int,
        view_extent: float,
    ) -> None:
        super().__init__(
            q_dim=2 * n_bodies,
            action_dim=2 * n_bodies,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=render_size,
        )
        self.n_bodies = n_bodies
        self.masses = np.asarray(masses, dtype=np.float64)
        self.gravity = float(gravity)
        self.view_extent = view_extent
        self._pairs = np.triu_indices(n_bodies, k=1)

    #: Relative and absolute tolerance of the ground-truth solver.
    tolerance: float = 1e-10

    def _rhs(self, force: FloatArray) -> Any:
        n = self.n_bodies
        inv_mass = [1.0 / m for m in self.masses.tolist() for _ in range(2)]
        pairs = [
            (2 * a, 2 * b, self.gravity * self.masses[a] * self.masses[b])
            for a, b in zip(*self._pairs, strict=True)
        ]
        force_list = force.ravel().tolist()

        # Plain Python floats: the solver calls this thousands of times per step near close
        # encounters, and for a handful of bodies numpy's per-call overhead would dominate.
        def rhs(_t: float, z: FloatArray) -> FloatArray:
            zl = z.tolist()
            q, p = zl[: 2 * n], zl[2 * n :]
            dp = list(force_list)
            for a, b, strength in pairs:
                dx, dy = q[b] - q[a], q[b + 1] - q[a + 1]
                r2 = dx * dx + dy * dy
                s = strength / (r2 * math.sqrt(r2))
                # Body a is pulled towards b, body b towards a.
                dp[a] += s * dx
                dp[a + 1] += s * dy
                dp[b] -= s * dx
                dp[b + 1] -= s * dy
            return np.array([pk * w for pk, w in zip(p, inv_mass, strict=True)] + dp)

        return rhs

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        force = (self.force_scale * action).reshape(self.n_bodies, 2)
        return adaptive_step(
            self._rhs(force), state, self.dt, rtol=self.tolerance, atol=self.tolerance
        )

    def _bodies(self, obs: Any) -> tuple[Any, Any, Any]:
        """Positions and momenta `(..., N, 2)` of a batch `(..., 4N)`, and the masses `(N,)`."""
        n, d = self.n_bodies, 2 * self.n_bodies
        lead = obs.shape[:-1]
        q = obs[..., :d].reshape(*lead, n, 2)
        p = obs[..., d:].reshape(*lead, n, 2)
        return q, p, self._const(self.masses, obs)

    def _time_derivative(self, obs: Any, force: Any) -> Any:
        xp = namespace(obs)
        q, p, m = self._bodies(obs)
        diff = q[..., None, :, :] - q[..., :, None, :]  # [i, j] = q_j - q_i
        eye = self._const(np.eye(self.n_bodies), obs)
        dist2 = xp.sum(diff * diff, axis=-1) + eye  # no self-force
        strength = self.gravity * m[:, None] * m[None, :] / dist2**1.5
        dp = xp.sum(strength[..., None] * diff, axis=-2).reshape(force.shape) + force
        dq = (p / m[:, None]).reshape(force.shape)
        return xp.concatenate([dq, dp], axis=-1)

    def _energy(self, obs: Any) -> Any:
        xp = namespace(obs)
        q, p, m = self._bodies(obs)
        kinetic = xp.sum(xp.sum(p * p, axis=-1) / (2.0 * m), axis=-1)
        i, j = self._pairs
        diff = q[..., i, :] - q[..., j, :]
        dist = xp.sqrt(xp.sum(diff * diff, axis=-1))
        potential = -self.gravity * xp.sum(m[i] * m[j] / dist, axis=-1)
        return kinetic + potential

    @staticmethod
    def _const(value: FloatArray, like: Any) -> Any:
        from ._xp import constant_like

        return constant_like(value, like)

    metadata = {**PhysicsEnv.metadata, "render_modes": ["rgb_array", "hgn"]}  # noqa: RUF012

    #: HGN frames: world square `[-3, 3]^2`; body `i` a disc of radius `size m_i` (2 px for
    #: the two-body's 0.55, 1 px for the three-body's 0.25), coloured red, yellow, green
    #: (the reimplementation's `gravity.py`).
    hgn_world_size: float = 3.0
    hgn_disc_size: float = 0.55

    def _hgn_frames(self, obs: FloatArray) -> NDArray[np.float32]:
        n = self.n_bodies
        centres = obs[:, : 2 * n].reshape(len(obs), n, 2)
        radii = np.array(
            [disc_radius_pixels(self.hgn_disc_size * m, self.hgn_world_size) for m in self.masses]
        )
        colours = HGN_COLOURS[[1, 0, 2]][:n]
        return blurred_discs(centres, radii, colours, self.hgn_world_size)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        canvas = Canvas(self.render_size, extent=self.view_extent)
        q = state[: 2 * self.n_bodies].reshape(self.n_bodies, 2)
        for i, body in enumerate(q):
            canvas.disc(body, 0.06 * self.view_extent * np.sqrt(self.masses[i]), PALETTE[i])
        return canvas.image


class TwoBodyEnv(_GravityEnv):
    r"""Two bodies orbiting under gravity in the plane (HNN, task 4).

    ## Parameters
    `m1 = m2 = 1`, `G = 1` (the paper's `g = m = 1`).

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0-3 | positions `x1, y1, x2, y2` | length |
    | 4-7 | momenta `px1, py1, px2, py2` | mass length/time |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0-3 | force on body 1 (x, y) then body 2 (x, y) | `[-1, 1] * force_scale` (default 0.1) |

    The default force is about a tenth of the mutual attraction at unit distance.

    ## Reward
    Hold a circular orbit of unit separation: `r = -(|q1' - q2'| - 1)^2 - 0.01 |a|^2`.

    ## Starting state
    As in the paper: centre of mass at the origin, total momentum zero, separation
    `|q2 - q1| ~ U[0.5, 1.5]` along a uniformly random direction, the velocities of a circular
    orbit (`|v| = sqrt(G m / (2 |q2 - q1|))`, counter-clockwise) scaled by one factor
    `1 + 0.05 N(0, 1)` shared by both bodies so the total momentum stays zero.
    `start="authors"` draws as the HNN authors' code does instead: body 1 at a position whose
    two coordinates are each `U[0.5, 1.5]` (so at distance `r` in `[0.71, 2.12]` from the
    centre, a separation of `2 r`, always starting in the first quadrant), body 2 opposite,
    with the same circular-orbit speeds and noise.

    ## Rendering
    `render_mode="hgn"` (and `hgn_frames(obs)`, batched, float32): the HGN paper's 32x32
    RGB frames, each body a blurred disc of its own colour. HGN's two-body system draws the
    orbit radius (half the separation) from `U(0.5, 1.5)`: `separation_range=(1, 3),
    dt=0.125`.

    ## Episode end
    Never terminates; the registered env truncates after 200 steps.

    ## Ground truth
    SciPy DOP853 with `rtol = atol = 1e-10` over each step, forces held constant.
    `dt = 0.1` by default (the authors' code sampled 50 points over 20 time units; set `dt`
    to reproduce that spacing).

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/TwoBody-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape
    (8,)
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        dt: float = 0.1,
        force_scale: float = 0.1,
        separation_range: tuple[float, float] = (0.5, 1.5),
        orbit_noise: float = 0.05,
        start: str = "paper",
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        if start not in ("paper", "authors"):
            raise ValueError(f"start must be 'paper' or 'authors', got {start!r}")
        super().__init__(
            n_bodies=2,
            masses=np.ones(2),
            gravity=1.0,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=render_size,
            view_extent=2.0,
        )
        self.separation_range = (float(separation_range[0]), float(separation_range[1]))
        self.orbit_noise = float(orbit_noise)
        self.start = start

    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        if self.start == "authors":
            q1 = rng.uniform(0.5, 1.5, size=2)
            separation = 2.0 * float(np.linalg.norm(q1))
            direction = q1 / np.linalg.norm(q1)
        else:
            separation = rng.uniform(*self.separation_range)
            direction = _rotate(np.array([1.0, 0.0]), rng.uniform(0.0, 2.0 * np.pi))
            q1 = 0.5 * separation * direction
        speed = np.sqrt(self.gravity * self.masses[1] / (2.0 * separation))
        v1 = speed * _rotate(direction, np.pi / 2) * (1.0 + self.orbit_noise * rng.normal())
        q = np.concatenate([q1, -q1])
        p = np.concatenate([self.masses[0] * v1, -self.masses[1] * v1])
        return np.concatenate([q, p])

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        diff = next_obs[..., 0:2] - next_obs[..., 2:4]
        separation = xp.sqrt(xp.sum(diff * diff, axis=-1))
        return -((separation - 1.0) ** 2) - 0.01 * xp.sum(action * action, axis=-1)


class ThreeBodyEnv(_GravityEnv):
    r"""Three bodies under gravity in the plane (SRNN section 5, HNN).

    `H = sum_i |p_i|^2 / (2 m_i) - sum_{i<j} G m_i m_j / |q_i - q_j|`, chaotic.

    ## Parameters
    `m = 1` for every body, `G = 1`.

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0-5 | positions `x1, y1, x2, y2, x3, y3` | length |
    | 6-11 | momenta `px1, py1, ..., py3` | mass length/time |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0-5 | force on body 1, 2, 3 (x, y each) | `[-1, 1] * force_scale` (default 0.1) |

    ## Reward
    Keep the bodies bound: `r = 1 - 0.01 |a|^2` per step, and the episode terminates once a
    body is farther than `escape_radius` (default 5) from the centre of mass.

    ## Starting state
    The HNN authors' near-circular configuration, which the SRNN paper reuses: the bodies on
    an equilateral triangle inscribed in a circle of radius `r ~ U[0.9, 1.2]` at a random
    rotation, each with the speed of a circular orbit (`1 / sqrt(sqrt(3) r)`) perpendicular
    to its radius, then each velocity component multiplied by `1 + 0.2 U[-1, 1]`.

    ## Rendering
    `render_mode="hgn"` (and `hgn_frames(obs)`): HGN's 32x32 RGB frames, each body a
    blurred disc of its own colour (HGN's three-body system: the defaults with `dt=0.125`).

    ## Episode end
    Terminates when a body escapes (see Reward); truncates after 200 steps.

    ## Ground truth
    SciPy DOP853 with `rtol = atol = 1e-9` (the HNN authors' tolerance), observed every
    `dt = 1` (SRNN Table 3). Close encounters make some steps cost thousands of evaluations.

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/ThreeBody-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs.shape
    (12,)
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        dt: float = 1.0,
        force_scale: float = 0.1,
        radius_range: tuple[float, float] = (0.9, 1.2),
        velocity_perturbation: float = 0.2,
        escape_radius: float = 5.0,
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        super().__init__(
            n_bodies=3,
            masses=np.ones(3),
            gravity=1.0,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=render_size,
            view_extent=3.0,
        )
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))
        self.velocity_perturbation = float(velocity_perturbation)
        self.escape_radius = float(escape_radius)
        self.tolerance = 1e-9
        self.hgn_disc_size = 0.25

    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        radius = rng.uniform(*self.radius_range)
        q1 = radius * _rotate(np.array([1.0, 0.0]), rng.uniform(0.0, 2.0 * np.pi))
        v1 = _rotate(q1, np.pi / 2) / radius / np.sqrt(np.sqrt(3.0) * radius)
        third = 2.0 * np.pi / 3.0
        q = [q1, _rotate(q1, third), _rotate(q1, 2 * third)]
        v = [v1, _rotate(v1, third), _rotate(v1, 2 * third)]
        v = [vi * (1.0 + self.velocity_perturbation * rng.uniform(-1.0, 1.0, 2)) for vi in v]
        p = [m * vi for m, vi in zip(self.masses, v, strict=True)]
        return np.concatenate([*q, *p])

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(action)
        return 1.0 - 0.01 * xp.sum(action * action, axis=-1)

    def _terminated(self, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        q = next_obs[..., :6].reshape(*next_obs.shape[:-1], 3, 2)
        m = self._const(self.masses, next_obs)
        centre = xp.sum(m[:, None] * q, axis=-2, keepdims=True) / xp.sum(m)
        dist2 = xp.sum((q - centre) ** 2, axis=-1)
        return (dist2 > self.escape_radius**2).any(axis=-1)
