"""The k-bob spring pendulum of decon-hnn (Gruver et al. 2022, section 4), in 3-D Cartesian
coordinates."""

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
from .chain_pendulum import authors_draws

#: Gravitational acceleration (m s^-2) along -z, as in the authors' code.
GRAVITY = 9.81
#: Seconds between observations, as in the authors' code (`SpringPendulum.dt = .03`).
DT = 0.03
#: Stiffness of every spring (N m^-1), as in the authors' code (`k=10`).
SPRING_CONSTANT = 10.0
#: Drag coefficient lambda of the papers' damped experiments (the authors' `f_const = 0.4`).
PAPER_DRAG = 0.4
#: Where drag acts: on the velocity (the paper's text) or on the momentum (the authors' code).
DRAG_FORMS = ("velocity", "momentum")
#: Initial-state distributions: PROTOCOLS.md's, or the authors' draw.
STARTS = ("paper", "authors")
#: Standard deviation of the initial perturbation of every coordinate (PROTOCOLS.md).
INITIAL_NOISE = 0.8
#: Weight of the quadratic control cost in the reward.
CONTROL_COST = 0.01
#: Below this spring length (m) the direction of a spring's force is taken as undefined.
_MIN_LENGTH = 1e-12


class SpringPendulumEnv(PhysicsEnv):
    r"""A chain of `bobs` point masses joined by springs and hung from the origin, in 3-D.

    ## Description

    The kSpringPendulum of decon-hnn (section 4; Finzi et al. 2021): bob `i` (0-based) of
    mass `m_i` at `x_i = (x, y, z)` is tied to bob `i - 1` by a spring of stiffness `k` and
    rest length `r_i`; bob 0 is tied to the origin (`x_-1 = 0`) by a spring of rest length
    `r_0 = 0`, and `r_i = 1` m for the others. Gravity pulls along `-z`. In Cartesian
    coordinates the mass matrix is constant and

        H(x, p) = sum_i |p_i|^2 / (2 m_i) + sum_i k/2 (|x_i - x_{i-1}| - r_i)^2 + g sum_i m_i z_i.

    Equations of motion, with drag `lambda` and applied forces `F_i`:

        d x_i / dt = p_i / m_i,
        d p_i / dt = -dH/dx_i + F_i - lambda p_i / m_i.

    The anchor spring has rest length 0, so its energy `k |x_0|^2 / 2` is smooth; a spring of
    rest length 1 has a gradient of direction undefined at zero length, where we take the force
    as zero (bobs never meet in practice).

    Parameters (the authors' values): `g = 9.81` m s^-2, `k = 10` N m^-1 for every spring;
    masses `m_i` (kg) are `0.6 + 0.8 U[0, 1]` drawn once under numpy's legacy seed 0. The
    authors' code hands them out with `list.pop()`, so bob 0 gets the *last* mass drawn; we
    reproduce that exactly. For `bobs = 2`: `masses = [1.1722, 1.0391]`. Exposed as
    `env.unwrapped.masses`, `rest_lengths`, `spring_constant` and `equilibrium` (the static
    equilibrium positions, `(bobs, 3)`).

    ## Observation Space

    `ndarray` of shape `(6 * bobs,)`, float64, unbounded, body-major:

    | Num               | Observation                                  | Unit        |
    |-------------------|----------------------------------------------|-------------|
    | 3i, 3i+1, 3i+2    | position `(x_i, y_i, z_i)` of bob `i`        | m           |
    | 3k+3i .. 3k+3i+2  | momentum `(p_ix, p_iy, p_iz)` of bob `i`     | kg m s^-1   |

    `q_dim = 3 * bobs`, `state_layout = "qp"`.

    ## Action Space

    `Box(-1, 1, (3 * bobs,), float32)`. Action `a_{3i+c}` is the force
    `F_{ic} = force_scale * a_{3i+c}` (N) on coordinate `c` (x, y, z) of bob `i`, the
    generalised force conjugate to that coordinate. Out-of-range actions are clipped.

    | Num       | Action                                | Min          | Max         |
    |-----------|---------------------------------------|--------------|-------------|
    | 3i + c    | force on coordinate `c` of bob `i` (N) | -force_scale | force_scale |

    ## Rewards

    Bring the pendulum to rest at its equilibrium: the energy above the minimum, in units of
    the pendulum's weight times one metre, plus a small quadratic control cost,

        r = -(H(next_obs) - H_eq) / (g sum_i m_i * 1 m) - 0.01 * sum_j a_j^2.

    `H_eq = min H` is the energy of the static equilibrium, so the reward is at most 0, and 0
    only at rest in equilibrium with no effort.

    ## Starting State

    The static equilibrium plus noise: the true minimum of the potential has the bobs hanging
    on the z axis, spring `i` stretched to `r_i + g (sum_{n >= i} m_n) / k` by the weight
    below it. Every position coordinate gets `0.8 N(0, 1)` m added and every momentum
    coordinate is `0.8 N(0, 1)` kg m s^-1 (PROTOCOLS.md: "equilibrium + 0.8 N(0, 1)").

    ## Episode End

    The environment never terminates; registration truncates after 300 steps.

    ## Ground Truth

    SciPy's DOP853 over each `dt = 0.03` s, with `rtol = atol = 1e-10` (tighter than the
    papers' `rtol <= 1e-7`) and the action held constant. The relative energy error over 1,000
    zero-action steps stays below 1e-9.

    ## Arguments

    - `bobs` (int, default 2): number of bobs `k >= 1`.
    - `drag` (float, default 0.0): drag coefficient `lambda` (kg s^-1) in
      `dp/dt = -dH/dq - lambda v`; 0 is the conservative system. The papers' damped
      experiments (Figure 6) use `lambda = 0.4` (`PAPER_DRAG`).
    - `drag_form` (`"velocity"` or `"momentum"`, default `"velocity"`): `"momentum"` is the
      authors' drag, `dp/dt = -dH/dq - lambda p` (lambda in s^-1).
    - `start` (`"paper"` or `"authors"`, default `"paper"`): `"authors"` draws the initial
      state as the authors' code does (see the differences below): their equilibrium,
      `0.8 N(0, 1)` added to every `z` and `0.4 N(0, 1)` to every coordinate, velocities
      `0.6 N(0, 1)` (`p = m v`).
    - `force_scale` (float, default 5.0): largest force (N) per coordinate.
    - `render_mode` (None or "rgb_array"): frames show the x-z plane (y is dropped).

    ## Differences From The Paper's Code

    - The authors' initial states perturb an "equilibrium" `z_i = -g sum_{j <= i}
      (sum_{n >= j} m_n) / k` that ignores the rest lengths (and takes the masses in drawing
      order, not in the popped order the dynamics use), adding `0.8 N(0, 1)` to `z`,
      `0.4 N(0, 1)` to every position coordinate and `0.6 N(0, 1)` to every velocity: that is
      `start="authors"`. The default perturbs the true equilibrium of this potential with
      `0.8 N(0, 1)` on every position and momentum coordinate, as PROTOCOLS.md states.
    - Their drag acts on the momentum (`drag_form="momentum"`, with `f_const = 0.4` in their
      experiments, `0.5` as their class default); the default acts on the velocity, as the
      paper's text writes it. Drag is off by default.
    - Actions (forces) and the reward are ours; a zero action is the papers' system.

    ## Version History

    * v0: initial version.

    ## Example

    >>> import gymnasium as gym
    >>> import physprior.envs
    >>> env = gym.make("physprior/SpringPendulum-v0", bobs=3)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape
    (18,)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> bool(reward <= 0.0)
    True
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        bobs: int = 2,
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
        if isinstance(bobs, bool) or not isinstance(bobs, (int, np.integer)) or bobs < 1:
            raise ValueError(f"bobs must be an integer >= 1, got {bobs!r}")
        if not np.isfinite(drag) or drag < 0:
            raise ValueError(f"drag must be a finite number >= 0, got {drag!r}")
        if not np.isfinite(force_scale) or force_scale <= 0:
            raise ValueError(f"force_scale must be a finite number > 0, got {force_scale!r}")
        k = int(bobs)
        super().__init__(
            q_dim=3 * k, action_dim=3 * k, dt=DT, force_scale=force_scale, render_mode=render_mode
        )
        self.bobs = k
        self.drag = float(drag)
        self.drag_form = drag_form
        self.start = start
        self.gravity = GRAVITY
        self.spring_constant = SPRING_CONSTANT
        # The authors pop from the end of the list: bob 0 gets the last draw.
        self.masses: FloatArray = np.array(authors_draws(k)[::-1])
        self.rest_lengths: FloatArray = np.array([0.0] + [1.0] * (k - 1))
        # Spring i carries the weight of bobs i..k-1 and stretches to r_i + weight / k.
        weight_below = GRAVITY * np.cumsum(self.masses[::-1])[::-1]
        stretched = self.rest_lengths + weight_below / SPRING_CONSTANT
        self.equilibrium: FloatArray = np.zeros((k, 3))
        self.equilibrium[:, 2] = -np.cumsum(stretched)
        for array in (self.masses, self.rest_lengths, self.equilibrium):
            array.setflags(write=False)
        # H at the equilibrium, the global minimum of H (see the reward in the docstring).
        self.equilibrium_energy = float(
            np.sum(-weight_below * self.rest_lengths - weight_below**2 / (2 * SPRING_CONSTANT))
        )
        self.energy_scale = GRAVITY * float(self.masses.sum())
        # Writable copies: torch warns when it wraps a read-only array (`constant_like`).
        self._masses = self.masses.copy()
        self._rest_lengths = self.rest_lengths.copy()
        self._inverse_mass = np.repeat(1.0 / self.masses, 3)
        self._gravity_force = np.zeros((k, 3))
        self._gravity_force[:, 2] = -GRAVITY * self.masses

    # ------------------------------------------------------------------ physics
    def vector_field(self, state: FloatArray, force: FloatArray) -> FloatArray:
        """`dz/dt` `(6k,)` of one state `(6k,)` under applied forces `force` `(3k,)` (N)."""
        n = 3 * self.bobs
        x = state[:n].reshape(-1, 3)
        velocity = state[n:] * self._inverse_mass
        # Spring i runs from bob i - 1 (the origin for i = 0) to bob i.
        spans = np.diff(x, axis=0, prepend=np.zeros((1, 3)))
        lengths = np.sqrt(np.sum(spans * spans, axis=1))
        # Tension over length, k (L - r) / L, written so that r = 0 never divides.
        stiffness = SPRING_CONSTANT * (1.0 - self.rest_lengths / np.maximum(lengths, _MIN_LENGTH))
        pull = stiffness[:, None] * spans  # force of spring i on bob i - 1; minus that on bob i
        spring_force = -pull
        spring_force[:-1] += pull[1:]
        dragged = state[n:] if self.drag_form == "momentum" else velocity
        p_dot = (spring_force + self._gravity_force).ravel() + force - self.drag * dragged
        return np.concatenate([velocity, p_dot])

    def _potential(self, q: Any) -> Any:
        """Potential energy `(N,)` (J) of positions `(N, 3k)` (m); numpy or torch."""
        xp = namespace(q)
        x = q.reshape((*q.shape[:-1], self.bobs, 3))
        # Subtracting a zero-padded copy gives the spans without numpy/torch-specific diff.
        previous = xp.concatenate([x[..., :1, :] * 0.0, x[..., :-1, :]], axis=-2)
        spans = x - previous
        lengths = xp.sqrt(xp.sum(spans * spans, axis=-1))
        stretch = lengths - constant_like(self._rest_lengths, q)
        elastic = 0.5 * SPRING_CONSTANT * xp.sum(stretch * stretch, axis=-1)
        gravity = GRAVITY * xp.sum(constant_like(self._masses, q) * x[..., 2], axis=-1)
        return elastic + gravity

    # ------------------------------------------------------------------ pure parts
    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        n = 3 * self.bobs
        if self.start == "authors":
            x = np.zeros((self.bobs, 3))
            # The masses in drawing order, as the authors' equilibrium takes them.
            drawn = self.masses[::-1]
            weight_below = GRAVITY * np.cumsum(drawn[::-1])[::-1]
            x[:, 2] = -np.cumsum(weight_below / SPRING_CONSTANT) + 0.8 * rng.standard_normal(
                self.bobs
            )
            x += 0.4 * rng.standard_normal((self.bobs, 3))
            p = self._masses.repeat(3) * 0.6 * rng.standard_normal(n)
            return np.concatenate([x.ravel(), p])
        q = self.equilibrium.ravel() + INITIAL_NOISE * rng.standard_normal(n)
        p = INITIAL_NOISE * rng.standard_normal(n)
        return np.concatenate([q, p])

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        force = self.force_scale * action
        return adaptive_step(lambda _t, z: self.vector_field(z, force), state, self.dt)

    def _energy(self, obs: Any) -> Any:
        xp = namespace(obs)
        n = 3 * self.bobs
        p = obs[..., n:]
        kinetic = 0.5 * xp.sum(constant_like(self._inverse_mass, obs) * p * p, axis=-1)
        return kinetic + self._potential(obs[..., :n])

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(next_obs)
        excess = (self._energy(next_obs) - self.equilibrium_energy) / self.energy_scale
        return -excess - CONTROL_COST * xp.sum(action * action, axis=-1)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        depth = -float(self.equilibrium[-1, 2])
        # Centre the frame on the hanging pendulum, with room for the initial perturbations.
        extent = 0.6 * depth + 1.5
        centre = np.array([0.0, -0.5 * depth])
        canvas = Canvas(self.render_size, extent)
        xz = state[: 3 * self.bobs].reshape(-1, 3)[:, [0, 2]] - centre
        points = np.vstack([-centre[None], xz])
        for start, end in pairwise(points):
            _zigzag(canvas, start, end, 0.05 * extent)
        canvas.disc(points[0], 0.025 * extent, (0, 0, 0))
        for i, (bob, mass) in enumerate(zip(xz, self.masses, strict=True)):
            canvas.disc(bob, 0.05 * extent * float(np.sqrt(mass)), PALETTE[i % len(PALETTE)])
        return canvas.image


def _zigzag(canvas: Canvas, start: FloatArray, end: FloatArray, amplitude: float) -> None:
    """Draw a spring from `start` to `end` (world units, (2,)) as a zigzag of 6 teeth."""
    span = end - start
    length = float(np.hypot(*span))
    if length < 1e-9:
        return
    normal = np.array([-span[1], span[0]]) / length
    t = np.linspace(0.0, 1.0, 16)
    side = np.zeros_like(t)
    side[1:-1:2], side[2:-1:2] = amplitude, -amplitude
    side[1], side[-2] = 0.0, 0.0  # straight leads at both ends
    points = start + t[:, None] * span + side[:, None] * normal
    width = 0.3 * amplitude
    for a, b in pairwise(points):
        canvas.segment(a, b, width, (60, 60, 60))
