"""The SRNN spring chain: 20 masses joined by 21 springs between two fixed walls."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, PhysicsEnv
from ._render import PALETTE, Canvas
from ._validation import strict_kwargs
from ._xp import constant_like, namespace


def draw_chain_parameters(
    n_masses: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Masses `(n,)` and spring constants `(n + 1,)` of one chain, as in PROTOCOLS.md.

    `m = max(0.2, 1 + N(0, 1) / 4)`, `k = 5 max(0.2, 1 + N(0, 1) / 4)`, drawn once per chain
    from `numpy.random.default_rng(seed)`: masses first, then springs (wall to wall).
    """
    rng = np.random.default_rng(seed)
    masses = np.maximum(0.2, 1.0 + rng.normal(size=n_masses) / 4.0)
    springs = 5.0 * np.maximum(0.2, 1.0 + rng.normal(size=n_masses + 1) / 4.0)
    return masses, springs


class SpringChainEnv(PhysicsEnv):
    r"""A chain of masses moving vertically, joined by springs, tied to two walls (SRNN sec. 4).

    `H = sum_i p_i^2 / (2 m_i) + 1/2 sum_{i=0..n} k_i (q_i - q_{i+1})^2` with `q_0 = q_{n+1} = 0`
    (the walls), no gravity. `n = 20` masses and 21 springs by default.

    ## Parameters
    `masses` `(20,)` and `spring_constants` `(21,)`, wall to wall, drawn once per chain from
    `chain_seed` (default 0) with `m = max(0.2, 1 + N(0,1)/4)`, `k = 5 max(0.2, 1 + N(0,1)/4)`.
    All trajectories of one env share the chain, as in the paper.

    ## Observation
    | index | quantity | unit |
    |-------|----------|------|
    | 0-19 | vertical displacements `q_1..q_20` | length |
    | 20-39 | momenta `p_1..p_20` | mass length/time |

    ## Action
    | index | generalised force | range |
    |-------|-------------------|-------|
    | 0-19 | vertical force on mass `i` | `[-1, 1] * force_scale` (default 1) |

    ## Reward
    Bring the chain to rest: `r = -0.01 H(next_obs) - 0.01 |a|^2`.

    ## Starting state
    `q, p ~ U[-2.5, 2.5]` independently for every mass (`init_range`). With
    `ends_at_rest=True` the two end masses start at rest at `q = 0`, as in the SRNN authors'
    data generator (`src/generate_data.py`; the paper does not say).

    ## Episode end
    Never terminates; the registered env truncates after 200 steps.

    ## Ground truth
    Leapfrog (kick-drift-kick) with `dt' = 0.001`, observed every `dt = 0.1` (100 substeps), as
    in the SRNN paper. The system is linear, so the 100 substeps are composed once into one
    affine map `z' = A z + B F` (exactly the leapfrog's result, up to rounding), which makes a
    step one small matrix product.

    ## Version history
    * v0: initial version.

    >>> import gymnasium as gym, physprior
    >>> env = gym.make("physprior/SpringChain-v0")
    >>> env.unwrapped.masses.shape, env.unwrapped.spring_constants.shape
    ((20,), (21,))
    """

    @strict_kwargs()
    def __init__(
        self,
        *,
        n_masses: int = 20,
        chain_seed: int = 0,
        dt: float = 0.1,
        substeps: int = 100,
        force_scale: float = 1.0,
        init_range: float = 2.5,
        ends_at_rest: bool = False,
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        if not isinstance(ends_at_rest, bool):
            raise TypeError(f"ends_at_rest must be True or False, got {ends_at_rest!r}")
        if n_masses < 1 or substeps < 1:
            raise ValueError(f"n_masses and substeps must be >= 1, got {n_masses}, {substeps}")
        super().__init__(
            q_dim=n_masses,
            action_dim=n_masses,
            dt=dt,
            force_scale=force_scale,
            render_mode=render_mode,
            render_size=render_size,
        )
        self.masses, self.spring_constants = draw_chain_parameters(n_masses, chain_seed)
        self.substeps = int(substeps)
        self.init_range = float(init_range)
        self.ends_at_rest = ends_at_rest
        self._stiffness = self._stiffness_matrix(self.spring_constants)
        self._transition, self._forcing = self._compose_leapfrog()

    @staticmethod
    def _stiffness_matrix(k: NDArray[np.float64]) -> NDArray[np.float64]:
        """`K` `(n, n)` with `V(q) = q^T K q / 2`: spring i joins mass i-1 and mass i."""
        n = len(k) - 1
        stiffness = np.diag(k[:-1] + k[1:])
        off = -k[1:-1]
        stiffness[np.arange(n - 1), np.arange(1, n)] = off
        stiffness[np.arange(1, n), np.arange(n - 1)] = off
        return stiffness

    def _compose_leapfrog(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The affine map of `substeps` leapfrog steps: `z' = A z + B F`.

        Returns `A` `(2n, 2n)` and `B` `(2n, n)`.
        """
        n = self.q_dim
        h = self.dt / self.substeps
        eye, zero = np.eye(n), np.zeros((n, n))
        # One substep as the product kick(h/2) drift(h) kick(h/2) on [q, p], with the force
        # entering the kicks: p += h/2 (-K q + F).
        kick = np.block([[eye, zero], [-0.5 * h * self._stiffness, eye]])
        drift = np.block([[eye, h * np.diag(1.0 / self.masses)], [zero, eye]])
        kick_force = np.vstack([zero, 0.5 * h * eye])
        step = self.leapfrog_matrix(h)
        step_force = kick @ drift @ kick_force + kick_force
        transition = np.eye(2 * n)
        forcing = np.zeros((2 * n, n))
        for _ in range(self.substeps):
            transition = step @ transition
            forcing = step @ forcing + step_force
        return transition, forcing

    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        state = rng.uniform(-self.init_range, self.init_range, size=2 * self.q_dim)
        if self.ends_at_rest:
            n = self.q_dim
            state[[0, n - 1, n, 2 * n - 1]] = 0.0
        return state

    @property
    def transition_matrix(self) -> FloatArray:
        """`A` `(2n, 2n)`: one zero-action step is `z' = A z` (the composed leapfrog)."""
        return self._transition.copy()

    def leapfrog_matrix(self, step: float) -> FloatArray:
        """`(2n, 2n)`: one kick-drift-kick leapfrog step of size `step` on the true `H`."""
        n = self.q_dim
        eye, zero = np.eye(n), np.zeros((n, n))
        kick = np.block([[eye, zero], [-0.5 * step * self._stiffness, eye]])
        drift = np.block([[eye, step * np.diag(1.0 / self.masses)], [zero, eye]])
        out: FloatArray = kick @ drift @ kick
        return out

    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        out: FloatArray = self._transition @ state + self._forcing @ (self.force_scale * action)
        return out

    def _time_derivative(self, obs: Any, force: Any) -> Any:
        xp = namespace(obs)
        n = self.q_dim
        q, p = obs[..., :n], obs[..., n:]
        stiffness = constant_like(self._stiffness, obs)
        return xp.concatenate([p / constant_like(self.masses, obs), force - q @ stiffness], axis=-1)

    def _energy(self, obs: Any) -> Any:
        xp = namespace(obs)
        n = self.q_dim
        q, p = obs[..., :n], obs[..., n:]
        m = constant_like(self.masses, obs)
        k = constant_like(self.spring_constants, obs)
        zero = q[..., :1] * 0.0
        stretch = xp.concatenate([q, zero], axis=-1) - xp.concatenate([zero, q], axis=-1)
        return xp.sum(p * p / (2.0 * m), axis=-1) + 0.5 * xp.sum(k * stretch * stretch, axis=-1)

    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        xp = namespace(action)
        return -0.01 * self._energy(next_obs) - 0.01 * xp.sum(action * action, axis=-1)

    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        n = self.q_dim
        extent = 2.0 * self.init_range
        canvas = Canvas(self.render_size, extent=extent)
        xs = np.linspace(-0.9 * extent, 0.9 * extent, n + 2)
        ys = np.concatenate([[0.0], state[:n], [0.0]])
        for x in (xs[0], xs[-1]):
            canvas.segment(
                np.array([x, -0.3 * extent]),
                np.array([x, 0.3 * extent]),
                0.05 * extent / 5,
                (0, 0, 0),
            )
        for a in range(n + 1):
            canvas.segment(
                np.array([xs[a], ys[a]]),
                np.array([xs[a + 1], ys[a + 1]]),
                0.02 * extent / 5,
                (90, 90, 90),
            )
        for a in range(1, n + 1):
            canvas.disc(
                np.array([xs[a], ys[a]]),
                0.2 * extent / 5 * np.sqrt(self.masses[a - 1]),
                PALETTE[0],
            )
        return canvas.image
