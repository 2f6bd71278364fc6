"""The ideal pendulum (HNN task 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._binary import thick_line, world_to_pixels
from ._hgn_frames import HGN_COLOURS, blurred_discs, disc_radius_pixels
from ._integrate import adaptive_step
from ._render import PALETTE, Canvas
from ._sampling import check_radius_range, point_on_phase_circle
from ._validation import strict_kwargs
from ._xp import namespace


class PendulumEnv(PhysicsEnv):
    r"""A frictionless pendulum, `H = 2 m g l (1 - cos q) + l^2 p^2 / (2 m)` (HNN, task 2).

    The Hamiltonian is the paper's, with `m = l = 1` and `g = 3`, so
    `H = 6 (1 - cos q) + p^2 / 2`, `dq/dt = p`, `dp/dt = -6 sin q + tau`. The HNN authors'
    code used `H = 3 (1 - cos q) + p^2`, which is `mass=0.5`: the same motion of `q`, with
    `p` and `H` halved.

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0 | `q`, angle from the downward vertical (not wrapped) | rad |
    | 1 | `p`, angular momentum | kg m^2/s |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0 | torque `tau` on `q` | `[-1, 1] * force_scale` N m (default 2) |

    The default torque is a third of the largest gravitational torque (6 N m), so swinging up
    takes several pumps, as in Gymnasium's Pendulum.

    ## Reward
    Swing up and balance (Gymnasium Pendulum's cost, upright is `q = pi`):
    `r = -(angle(q' - pi)^2 + 0.1 p'^2 + 0.001 tau^2)` with `angle` wrapped to `[-pi, pi)`
    and `q', p'` the next state.

    ## Parameters
    `mass` (default 1) and `gravity` (default 3, the HNN paper's `g`). The HNN paper's `H`
    carries `2 m g l`, so the motion is `d^2q/dt^2 = -2 g sin q` (with `l = 1`): the textbook
    pendulum `d^2q/dt^2 = -g' sin q` of the VIN paper (`g' = 9.82`, `m = 1`) is
    `gravity=4.91`, with `p = dq/dt` and `H` its energy.

    ## Starting state
    `start="hnn"` (the default): a point on the circle of radius `r ~ U[radius_range]`
    (default `[1.3, 2.3]`) in the `(q, p)` plane at a uniform angle. The paper calls this
    range the energies; as in the authors' code and PROTOCOLS.md it is the phase-space radius
    that is sampled. `start="vin"`: the VIN authors' draw (`systems.py`), large swings:
    `q = s (pi - U(0.1, pi/2))` with a random sign `s` and `dq/dt ~ U(-1, 1)`, so
    `p = m l^2 dq/dt`.

    ## Rendering
    `render_mode="rgb_array"`: a colour frame of `render_size` pixels. `render_mode="binary"`
    (and `binary_frames(obs)`, batched): the VIN authors' 28x28 binary frames, a black rod
    12 points wide from the pivot to the bob on axes `[-(l + 0.2), l + 0.2]^2`.

    `render_mode="hgn"` (and `hgn_frames(obs)`, batched, float32): the HGN paper's 32x32
    RGB frames, the bob alone as a blurred disc (HGN's system: `mass=0.5, gravity=3,
    radius_range=(1.3, 2.3), dt=0.125`).

    ## Episode end
    Never terminates; the registered env truncates after 200 steps.

    ## Ground truth
    SciPy DOP853 over each step with `rtol = atol = 1e-10` (the protocol asks for 1e-9 or
    tighter), torque held constant. `dt = 1/15` s: the authors' code samples 15 points per
    second.

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/Pendulum-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([0.0])
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        dt: float = 1.0 / 15.0,
        force_scale: float = 2.0,
        radius_range: tuple[float, float] = (1.3, 2.3),
        mass: float = 1.0,
        gravity: float = 3.0,
        start: str = "hnn",
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        for name, value in (("mass", mass), ("gravity", gravity)):
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if not number or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if start not in ("hnn", "vin"):
            raise ValueError(f"start must be 'hnn' or 'vin', got {start!r}")
        super().__init__(
            q_dim=1,
            action_dim=1,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=render_size,
        )
        self.m, self.l, self.g = float(mass), 1.0, float(gravity)
        self.radius_range = check_radius_range(radius_range)
        self.start = start

    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        if self.start == "vin":
            sign = rng.choice([-1.0, 1.0])
            angle = sign * (np.pi - rng.uniform(0.1, np.pi / 2))
            rate = rng.uniform(-1.0, 1.0)
            return np.array([angle, self.m * self.l**2 * rate])
        return point_on_phase_circle(rng, self.radius_range)

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        torque = self.force_scale * float(action[0])
        stiffness = 2.0 * self.m * self.g * self.l
        rate = self.l**2 / self.m

        def rhs(_t: float, z: FloatArray) -> FloatArray:
            return np.array([rate * z[1], -stiffness * np.sin(z[0]) + torque])

        return adaptive_step(rhs, state, self.dt)

    def _time_derivative(self, obs: Any, force: Any) -> Any:
        xp = namespace(obs)
        q, p = obs[..., :1], obs[..., 1:]
        stiffness = 2.0 * self.m * self.g * self.l
        return xp.concatenate([self.l**2 / self.m * p, -stiffness * xp.sin(q) + force], axis=-1)

    def _energy(self, obs: Any) -> Any:
        xp = namespace(obs)
        q, p = obs[..., 0], obs[..., 1]
        return 2.0 * self.m * self.g * self.l * (1.0 - xp.cos(q)) + self.l**2 * p * p / (2 * self.m)

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        q, p = next_obs[..., 0], next_obs[..., 1]
        # q - pi wrapped to [-pi, pi): (q - pi + pi) mod 2 pi - pi.
        upright_error = q % (2.0 * np.pi) - np.pi
        torque = self.force_scale * action[..., 0]
        return -(upright_error**2 + 0.1 * p * p + 0.001 * torque * torque)

    metadata = {**PhysicsEnv.metadata, "render_modes": ["rgb_array", "binary", "hgn"]}  # noqa: RUF012

    #: HGN frames: world square `[-2, 2]^2`, the bob only, a disc of radius 0.5 (4 px) at
    #: `(l sin q, l cos q)` with image rows growing downwards, so `q = 0` hangs below the
    #: pivot (the reimplementation's `pendulum.py`).
    hgn_world_size: float = 2.0
    hgn_disc_size: float = 0.5

    def _hgn_frames(self, obs: FloatArray) -> NDArray[np.float32]:
        q = obs[:, 0]
        bob = self.l * np.stack((np.sin(q), np.cos(q)), axis=-1)[:, None]
        radius = np.array([disc_radius_pixels(self.hgn_disc_size, self.hgn_world_size)])
        return blurred_discs(bob, radius, HGN_COLOURS[:1], self.hgn_world_size)

    def _binary_frames(self, obs: FloatArray) -> NDArray[np.uint8]:
        # The authors' systems.py: a line of width 12 pt, axes limits l + 0.2.
        limit = self.l + 0.2
        q = obs[:, 0]
        bob = self.l * np.stack((np.sin(q), -np.cos(q)), axis=-1)
        pivot = world_to_pixels(np.zeros_like(bob), limit)
        return thick_line(pivot, world_to_pixels(bob, limit), width_points=12.0)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        canvas = Canvas(self.render_size, extent=1.3 * self.l)
        pivot = np.zeros(2)
        bob = self.l * np.array([np.sin(state[0]), -np.cos(state[0])])
        canvas.segment(pivot, bob, 0.06, (60, 60, 60))
        canvas.disc(bob, 0.12, PALETTE[1])
        canvas.disc(pivot, 0.04, (0, 0, 0))
        return canvas.image
