"""The ideal mass-spring system (HNN task 1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._binary import filled_disc, world_to_pixels
from ._hgn_frames import HGN_COLOURS, blurred_discs, disc_radius_pixels
from ._render import PALETTE, Canvas
from ._sampling import check_radius_range, point_on_phase_circle
from ._validation import strict_kwargs
from ._xp import namespace


class MassSpringEnv(PhysicsEnv):
    r"""A frictionless mass on a spring, `H = k q^2 / 2 + p^2 / (2 m)` (HNN, task 1).

    ## Parameters
    `k = m = 1` as in the paper (`stiffness`, `mass`), so the angular frequency is
    `w = sqrt(k / m) = 1` rad/s. The HNN authors' code used `H = q^2 + p^2`, which is
    `stiffness=2, mass=0.5` (`w = 2`).

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0 | `q`, displacement from rest | m |
    | 1 | `p = m dq/dt`, momentum | kg m/s |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0 | force on the mass along `q` | `[-1, 1] * force_scale` N (default 0.5) |

    ## Reward
    Damp the oscillation: `r = -H(next_obs) - 0.01 * a^2` (energy in J, `a` the action).

    ## Starting state
    `start="hnn"` (the default): a point on the circle of radius `r ~ U[radius_range]`
    (default `[0.2, 1]`) in the `(q, p)` plane at a uniform angle. The paper speaks of total
    energies in `[0.2, 1]`; the protocol samples the phase-space radius over that range, as
    PROTOCOLS.md states, so `H = r^2 / 2` lies in `[0.02, 0.5]`. (The authors' code used
    `H = q^2 + p^2` and radius `U[0.1, 1]`; we keep the paper's Hamiltonian.)
    `start="vin"`: the VIN authors' draw (`systems.py`; with `stiffness=2`, their system):
    `q = +-U(1, 1.5)` and `dq/dt ~ U(-0.5, 0.5)`, so `p = m dq/dt`.

    ## Rendering
    `render_mode="rgb_array"`: a colour frame of `render_size` pixels. `render_mode="binary"`
    (and `binary_frames(obs)`, batched): the VIN authors' 28x28 binary frames, a black disc
    (matplotlib marker size 400 square points) at `(q, 0)` on axes `[-2.5, 2.5]^2`.

    `render_mode="hgn"` (and `hgn_frames(obs)`, batched, float32): the HGN paper's 32x32
    RGB frames, a blurred disc at `(0, q)` (HGN's system: `stiffness=2, mass=0.5,
    radius_range=(0.1, 1), dt=0.125`).

    ## Episode end
    Never terminates; the registered env truncates after 200 steps.

    ## Ground truth
    Exact: with the force `F` held constant over a step, the motion is a rotation in phase
    space about the shifted equilibrium `q* = F / k`. `dt = 0.1` s (the authors' code samples
    30 points over 3 s).

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/MassSpring-v0")
    >>> obs, _ = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step([0.0])
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        dt: float = 0.1,
        force_scale: float = 0.5,
        radius_range: tuple[float, float] = (0.2, 1.0),
        stiffness: float = 1.0,
        mass: float = 1.0,
        start: str = "hnn",
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        for name, value in (("stiffness", stiffness), ("mass", mass)):
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
        self.k = float(stiffness)
        self.m = float(mass)
        self.radius_range = check_radius_range(radius_range)
        self.start = start

    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        if self.start == "vin":
            position = rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.5)
            velocity = rng.uniform(-0.5, 0.5)
            return np.array([position, self.m * velocity])
        return point_on_phase_circle(rng, self.radius_range)

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        w = np.sqrt(self.k / self.m)
        shift = self.force_scale * action[0] / self.k
        x, p = state[0] - shift, state[1]
        c, s = np.cos(w * self.dt), np.sin(w * self.dt)
        return np.array([shift + c * x + s * p / (self.m * w), -s * self.m * w * x + c * p])

    def _time_derivative(self, obs: Any, force: Any) -> Any:
        xp = namespace(obs)
        q, p = obs[..., :1], obs[..., 1:]
        return xp.concatenate([p / self.m, -self.k * q + force], axis=-1)

    def _energy(self, obs: Any) -> Any:
        q, p = obs[..., 0], obs[..., 1]
        return 0.5 * self.k * q * q + 0.5 * p * p / self.m

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(action)
        return -self._energy(next_obs) - 0.01 * xp.sum(action * action, axis=-1)

    metadata = {**PhysicsEnv.metadata, "render_modes": ["rgb_array", "binary", "hgn"]}  # noqa: RUF012

    #: HGN frames: world square `[-2, 2]^2`, a disc of radius 0.5 (4 px) at `(0, q)` (the
    #: reimplementation's `spring.py`, whose radius is the mass, 0.5 in HGN's system).
    hgn_world_size: float = 2.0
    hgn_disc_size: float = 0.5

    def _hgn_frames(self, obs: FloatArray) -> NDArray[np.float32]:
        centre = np.stack((np.zeros(len(obs)), obs[:, 0]), axis=-1)[:, None]
        radius = np.array([disc_radius_pixels(self.hgn_disc_size, self.hgn_world_size)])
        return blurred_discs(centre, radius, HGN_COLOURS[:1], self.hgn_world_size)

    def _binary_frames(self, obs: FloatArray) -> NDArray[np.uint8]:
        # The authors' systems.py: scatter(s=400) on axes limits 2.5.
        centre = np.stack((obs[:, 0], np.zeros(len(obs))), axis=-1)
        return filled_disc(world_to_pixels(centre, 2.5), area_points2=400.0)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        canvas = Canvas(self.render_size, extent=1.5)
        wall = np.array([-1.4, 0.0])
        mass = np.array([state[0], 0.0])
        canvas.segment(np.array([-1.4, -0.5]), np.array([-1.4, 0.5]), 0.05, (0, 0, 0))
        canvas.segment(wall, mass, 0.03, (80, 80, 80))
        canvas.disc(mass, 0.15, PALETTE[0])
        return canvas.image
