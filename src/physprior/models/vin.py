"""`vin`: variational integrator networks (Saemundsson et al. 2020), in phase space.

A learned potential `U(q)` with the identity mass matrix, stepped by one of the paper's
discrete variational integrators (`scheme`):

- `vv`, velocity Verlet (eqs. 9-10), on the state `(q, v)`:

      q' = q + h v - h^2/2 grad U(q),   v' = v - h/2 (grad U(q) + grad U(q'))

  which is kick-drift-kick leapfrog for `H = |v|^2 / 2 + U(q)`: physprior's own leapfrog
  steps it, so it is symplectic and time-reversible by construction.
- `sv`, Stormer-Verlet on positions (eq. 6), on `(q_t, q_{t-1})`:

      q_{t+1} = 2 q_t - q_{t-1} - h^2 grad U(q_t)

- `so2`, the angle-preserving scheme for SO(2) coordinates (eqs. 11-12), on `(q_t, q_{t-1})`:

      s = sin(q_t - q_{t-1}) - h^2 grad U(q_t),   q_{t+1} = q_t + asin(clip(s, +-(1 - 1e-4)))

  so one step never turns an angle by more than `asin(1 - 1e-4) < pi/2`.

Differences from the paper and the authors' code (steindoringi/Variational_Integrator_Networks,
`models.py`), and why:

- Sign: the code adds `+ h^2 grad U` in `sv` and `so2` (its `U` is the paper's negated);
  here the paper's minus, so that `U` is the potential energy and the true one can be checked.
- `so2`'s network: the paper puts a sine on `r(q)` itself; the code's `r` is the gradient of
  `U = sin(W_2 tanh(W_1 q + b_1) + b_2)`, which is what this model learns (an output bias
  kept, unlike `vv` and `sv`, whose output bias could not change `grad U`).
- States here are observations `(q, v)` as every physprior model's: `[q, p]` data (physprior's
  envs) are read with unit mass, `p = v`, as the paper's systems have it; `[q, v]` alike.
  `sv` and `so2` carry `q_{t-1}` as recurrent memory through a rollout. At its first step,
  and at every step of `step()` or a learned env (which step without memory), `q_{t-1}` comes
  from the observed velocity as the position one `vv` step back would:
  `q_{t-1} = q_t - h v_t - h^2/2 grad U(q_t)`. Velocities are read out as
  `v_{t+1} = (q_{t+1} - q_t) / h - h/2 grad U(q_{t+1})`, `vv`'s velocity for the same
  positions. With these two maps `sv` and `vv` are the same map on `(q, v)` up to rounding
  (tested): the schemes differ where only positions are observed (pixels).
- Units: with `normalize=True` (physprior's default) `U = E * net((q - mean) / std)` with `E`
  an energy unit fitted from data (`PhaseScales`), the mass stays the identity in the data's
  units; `normalize=False` gives the authors' raw `U = net(q)`.
- Actions (not in the paper): a learned generalised force `G(q) u` on `dv/dt`, as in `srnn`.

Shapes: states `(B, 2n)`, actions `(B, A)`. The authors' configuration is the default: one
hidden layer of 1,000 tanh units, the step `h = dt`, trained recurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, final

import torch
from torch import Tensor

from physprior.integrators import get_integrator

from ._base import Memory, ModelConfig, TransitionModel
from ._hamiltonian import (
    SMOOTH_ACTIVATIONS,
    Forcing,
    NetSize,
    PhaseScales,
    _energy_mlp,
    _mlp_forward,
    _mlp_input_vjp,
    mlp_gradient,
)
from ._registry import register

__all__ = ["VIN", "VINConfig"]

Scheme = Literal["vv", "sv", "so2"]
SCHEMES: tuple[str, ...] = ("vv", "sv", "so2")
#: The authors' clip of `s` before `asin` in `so2` (models.py): a step turns an angle by at
#: most `asin(1 - SO2_CLIP)` = 1.5567 rad.
SO2_CLIP = 1e-4


@dataclass
class VINConfig(ModelConfig):
    """Configuration of :class:`VIN`: `ModelConfig`'s shared fields with the authors' defaults
    (one hidden layer of 1,000 tanh units, recurrent training), and the integration scheme.

    `state_layout`: `[q, p]` (physprior's envs) and `[q, v]` are both read with the identity
    mass, `p = v`. `integrator`, `test_integrator` and `substeps` must stay at their defaults:
    the scheme is the integrator, with one step `h = dt` per observation interval as in the
    paper.
    """

    scheme: Scheme = "vv"
    """`vv` (velocity Verlet), `sv` (Stormer-Verlet on positions) or `so2` (for angles)."""
    hidden: int = 1000
    """Width of the potential's hidden layer(s)."""
    layers: int = 1
    """Hidden layers of the potential (the paper's "single-layer" network: 1)."""
    integrator: str = "leapfrog"
    """Fixed: `vv` is leapfrog; `sv` and `so2` are their own two-step maps."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {self.scheme!r}")
        if self.obs_dim != 2 * self.v_dim:
            raise ValueError(
                f"vin needs as many velocities as positions: obs_dim={self.obs_dim} with "
                f"q_dim={self.q_dim}"
            )
        if self.activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(
                f"vin needs a smooth activation (its force is the network's gradient), got "
                f"{self.activation!r}; valid: {', '.join(SMOOTH_ACTIVATIONS)}"
            )
        fixed = {"integrator": "leapfrog", "test_integrator": None, "substeps": 1}
        for field, default in fixed.items():
            value = getattr(self, field)
            if value != default and not (field == "test_integrator" and value == "leapfrog"):
                raise ValueError(
                    f"vin's {field} is fixed by its scheme (one step h = dt): leave it at "
                    f"{default!r}, got {value!r}"
                )


@final
class _VelocityVerletField:
    """`dq/dt = v`, `dv/dt = -grad U(q) + G(q) u`: the split field leapfrog steps for `vv`."""

    separable = True

    def __init__(self, model: VIN, control: Tensor | None) -> None:
        self.model = model
        self.control = control

    def position_rate(self, q: Tensor, v: Tensor) -> Tensor:
        return v

    def momentum_rate(self, q: Tensor, v: Tensor) -> Tensor:
        return self.model._acceleration(q, self.control)


@register
@final
class VIN(TransitionModel):
    """A learned potential `U(q)` with unit mass, stepped by a variational integrator.

    See the module docstring for the schemes and how they differ from the paper.

    >>> import torch, physprior.models as models
    >>> model = models.make("vin", obs_dim=2, dt=0.1, hidden=16).double().eval()
    >>> z0 = torch.randn(3, 2, dtype=torch.float64)
    >>> back = model.step(model.step(z0) * torch.tensor([1.0, -1.0]))  # reverse v, step
    >>> bool(torch.allclose(back * torch.tensor([1.0, -1.0]), z0, rtol=0, atol=1e-12))
    True
    """

    name: ClassVar[str] = "vin"
    config_class: ClassVar[type[ModelConfig]] = VINConfig
    config: VINConfig

    def __init__(self, config: VINConfig) -> None:
        if not isinstance(config, VINConfig):
            raise TypeError(f"VIN needs a VINConfig, got {type(config).__name__}")
        super().__init__(config)
        n = self.q_dim
        size = NetSize(config.hidden, config.layers, config.activation)
        self.scales = PhaseScales(n)
        if config.scheme == "so2":
            self.potential_net = size.mlp(n, 1)  # the sine's phase: its bias matters
        else:
            self.potential_net = _energy_mlp(size, n)
        self.forcing = Forcing(n, config.action_dim, size) if config.action_dim else None

    @property
    def h(self) -> float:
        """The integrator's step: the observation interval `dt`."""
        return self.dt

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Fit the normalisers, then the energy and force units (unit mass: `p = v`)."""
        super().fit_normalization(states, actions)
        if self.config.normalize:
            self.scales.fit(
                self.state_norm.mean, self.state_norm.std, self.delta_norm.std, self.dt, "qp"
            )

    # ------------------------------------------------------------------ the potential
    def potential(self, q: Tensor) -> Tensor:
        """`U(q)` `(B,)` at positions `q` `(B, n)`, in the data's energy units (unit mass)."""
        out = self.potential_net(self.scales.q_hat(q)).squeeze(-1)
        if self.config.scheme == "so2":
            out = out.sin()
        return self.scales.energy_scale * out

    def potential_gradient(self, q: Tensor) -> Tensor:
        """`grad U(q)` `(B, n)`, by written-out backpropagation (differentiable again)."""
        x = self.scales.q_hat(q)
        if self.config.scheme == "so2":
            out, slopes = _mlp_forward(self.potential_net, x)
            grad = out.cos() * _mlp_input_vjp(self.potential_net, slopes, None)
        else:
            grad = mlp_gradient(self.potential_net, x)
        return self.scales.energy_scale * grad / self.scales.q_std

    def _acceleration(
        self, q: Tensor, control: Tensor | None, gradient: Tensor | None = None
    ) -> Tensor:
        """`dv/dt = -grad U(q) + G(q) u` `(B, n)`; `gradient`: `grad U(q)` if known."""
        rate = -(self.potential_gradient(q) if gradient is None else gradient)
        if self.forcing is not None and control is not None:
            rate = rate + self.forcing(q, control, self.scales)
        return rate

    def energy(self, z: Tensor) -> Tensor:
        """The learned energy `|v|^2 / 2 + U(q)` `(B,)` of states `z` `(B, 2n)`."""
        z = self._check_state(z)
        n = self.q_dim
        return 0.5 * z[:, n:].square().sum(-1) + self.potential(z[:, :n])

    # ------------------------------------------------------------------ steps
    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """One step `(B, 2n) -> (B, 2n)`. `sv` and `so2` carry `(q_t, grad U(q_{t+1}))` as
        memory: the previous position, and the gradient the next step would recompute."""
        control = u / self.action_norm.std if self.action_dim else None
        if self.config.scheme == "vv":
            field = _VelocityVerletField(self, control)
            return get_integrator("leapfrog").advance(field, z, self.h, 1), None
        n, h = self.q_dim, self.h
        q, v = z[:, :n], z[:, n:]
        previous, gradient = memory if memory is not None else (None, None)
        accel = self._acceleration(q, control, gradient)
        if previous is None:  # one vv step back from the observed velocity
            previous = q - h * v + 0.5 * h * h * accel
        q_next = self._next_position(q, previous, accel)
        gradient_next = self.potential_gradient(q_next)
        v_next = (q_next - q) / h + 0.5 * h * self._acceleration(q_next, control, gradient_next)
        return torch.cat((q_next, v_next), dim=-1), (q, gradient_next)

    def position_step(self, q: Tensor, previous: Tensor, u: Tensor | None = None) -> Tensor:
        """`q_{t+1}` `(B, n)` from `q_t` and `q_{t-1}` `(B, n)` under actions `u` `(B, A)`:
        the `sv` or `so2` two-step map itself, on positions only (the pixel model's latent)."""
        if self.config.scheme == "vv":
            raise ValueError("position_step is the sv and so2 map; vv steps (q, v) states")
        control = None
        if self.action_dim:
            u = self._check_action(u, q.shape[0])
            control = u / self.action_norm.std
        return self._next_position(q, previous, self._acceleration(q, control))

    def _next_position(self, q: Tensor, previous: Tensor, accel: Tensor) -> Tensor:
        h = self.h
        if self.config.scheme == "sv":
            return 2.0 * q - previous + h * h * accel
        s = torch.sin(q - previous) + h * h * accel
        bound = 1.0 - SO2_CLIP
        return q + torch.asin(s.clamp(-bound, bound))
