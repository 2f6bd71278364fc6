"""`hnn`: a Hamiltonian neural network (Greydanus et al. 2019; the forms of decon-hnn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, final

import torch
from torch import Tensor

from physprior.integrators import get_integrator

from ._base import LossKind, Memory, ModelConfig, TransitionModel, gaussian_nll, state_error
from ._hamiltonian import (
    ENERGY_FORMS,
    SMOOTH_ACTIVATIONS,
    Dissipation,
    EnergyForm,
    Forcing,
    FreeField,
    HamiltonianSystem,
    MassConversion,
    MechanicalEnergy,
    NetSize,
    as_duration,
    make_energy,
)
from ._registry import register

__all__ = ["HNN", "HNNConfig"]

TrainingTarget = Literal["trajectory", "derivative"]


@dataclass
class HNNConfig(ModelConfig):
    """Configuration of :class:`HNN`: the shared fields of `ModelConfig` and these.

    `hidden`, `layers` and `activation` size every network of the model (the energy, the mass
    matrix, the control input matrix and the damping). The original HNN used 3 layers of 200
    tanh units, trained on derivatives and rolled out with RK4.
    """

    form: EnergyForm = "general"
    """The Hamiltonian: `general` H(q, p) = MLP([q, p]); `separable` K(p) + V(q) (two MLPs);
    `mechanical` p^T M(q)^-1 p / 2 + V(q) with a learned positive-definite mass matrix M(q).
    On `[q, v]` data the mechanical form converts velocities with its own mass matrix, so
    `dq/dt = v` (second-order structure); the other forms learn a separate mass matrix for the
    conversion only (decon-hnn's `NonseparableHNN`, an HNN without that structure)."""
    training: TrainingTarget = "trajectory"
    """`trajectory`: fit states through the integrator (single-step or recurrent, per
    `train_mode`). `derivative`: the original HNN, fit the field to finite-difference time
    derivatives of the windows: `(z_{t+1} - z_t) / dt` at the midpoint `(z_t + z_{t+1}) / 2`
    under action `u_t`, second-order accurate like a central difference, and usable on windows
    of two states. `[q, p]` data only."""
    dissipation: bool = False
    """Add a learned damping force `-D(q) dq/dt` with `D` positive semi-definite to `dp/dt`
    (drag, friction, MuJoCo joint damping)."""
    free_field: bool = False
    """Add an unconstrained MLP `g(q, p)` to both `dq/dt` and `dp/dt`: decon-hnn's
    `MixtureHNN` (the SymODEN of their Figure 6), an HNN plus a free neural ODE. The field is
    then neither Hamiltonian nor dissipative, so it needs a non-split integrator (`rk4`,
    `euler`)."""
    mass_eps: float = 1e-3
    """Lower bound on the diagonal of the Cholesky factor of the normalised inverse mass matrix
    (mechanical form): keeps `M(q)^-1` invertible, so `p = M(q) v` exists."""

    supports_angle_embedding: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.form not in ENERGY_FORMS:
            raise ValueError(f"form must be one of {ENERGY_FORMS}, got {self.form!r}")
        if self.training not in ("trajectory", "derivative"):
            raise ValueError(
                f"training must be 'trajectory' or 'derivative', got {self.training!r}"
            )
        if self.obs_dim != 2 * self.v_dim:
            raise ValueError(
                f"hnn needs as many momenta as positions: obs_dim={self.obs_dim} with "
                f"q_dim={self.q_dim}"
            )
        if self.activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(
                f"hnn needs a smooth activation (its field is the network's gradient), got "
                f"{self.activation!r}; valid: {', '.join(SMOOTH_ACTIVATIONS)}"
            )

        if self.state_layout == "qv" and self.training == "derivative":
            raise ValueError("training='derivative' needs [q, p] data; use 'trajectory'")
        for name in (self.integrator, self.test_integrator):
            if name is not None and get_integrator(name).requires_split:
                if self.free_field:
                    raise ValueError(
                        f"integrator {name!r} needs a separable field; free_field=True adds "
                        "a free one: use 'rk4' or 'euler'"
                    )
                if self.form != "separable":
                    raise ValueError(
                        f"integrator {name!r} needs form='separable' (with a q-dependent "
                        f"dq/dt it is not symplectic); use 'rk4' for form={self.form!r}"
                    )
        if not self.mass_eps > 0:
            raise ValueError(f"mass_eps must be positive, got {self.mass_eps}")


@register
@final
class HNN(TransitionModel):
    """A learned scalar Hamiltonian whose gradient gives the dynamics.

    `dq/dt = dH/dp`, `dp/dt = -dH/dq + G(q) u - D(q) dq/dt`, with the control `u` divided by
    its fitted scale (no shift: a zero action is no force), `G(q)` a learned `(n, A)` input
    matrix and `D(q)` the optional damping. `H = E * net(normalised state)` with `E` a fitted
    energy unit; gradients are taken with respect to the original coordinates, so without
    control and damping the flow is exactly Hamiltonian in the data's units. One step integrates
    `dt` with `config.integrator` (training) or `config.test_integrator` (evaluation) in
    `substeps` steps: RK4 for every form, leapfrog or symplectic Euler for the separable one.

    Shapes: states `(B, D)` with `D = 2n` laid out `[q, p]` (or `[q, v]` for the mechanical
    form: `p = M(q) v` on the way in, `v = M(q)^-1 p` on the way out), actions `(B, A)`.

    >>> import torch, physprior.models as models
    >>> model = models.make("hnn", obs_dim=2, dt=0.1, form="separable", integrator="leapfrog")
    >>> model.rollout(torch.zeros(3, 2), steps=4).shape
    torch.Size([3, 5, 2])
    """

    name: ClassVar[str] = "hnn"
    config_class: ClassVar[type[ModelConfig]] = HNNConfig
    config: HNNConfig

    def __init__(self, config: HNNConfig) -> None:
        if not isinstance(config, HNNConfig):
            raise TypeError(f"HNN needs an HNNConfig, got {type(config).__name__}")
        super().__init__(config)
        n = self.q_dim
        size = NetSize(config.hidden, config.layers, config.activation)
        energy = make_energy(
            config.form, n, size, mass_eps=config.mass_eps, angles=config.angle_embedding
        )
        features = energy.q_features_dim
        self.system = HamiltonianSystem(
            energy,
            forcing=(
                Forcing(n, config.action_dim, size, q_features=features)
                if config.action_dim
                else None
            ),
            dissipation=Dissipation(n, size, q_features=features) if config.dissipation else None,
            free_field=FreeField(n, size, q_features=features) if config.free_field else None,
            conversion=(
                MassConversion(n, size, mass_eps=config.mass_eps, q_features=features)
                if config.state_layout == "qv" and config.form != "mechanical"
                else None
            ),
        )

    # ------------------------------------------------------------------ normalisation
    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Fit the normalisers, then the energy, momentum, force and damping units from them."""
        super().fit_normalization(states, actions)
        self.system.scales.fit(
            self.state_norm.mean,
            self.state_norm.std,
            self.delta_norm.std,
            self.dt,
            self.config.state_layout,
        )
        if self.system.free_field is not None:
            rate = self.delta_norm.std[: self.q_dim] / self.dt
            self.system.free_field.position_rate_scale.copy_(rate)

    # ------------------------------------------------------------------ dynamics
    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        return self._flow(z, u, self.dt), None

    def flow(
        self, z: Tensor, u: Tensor | None = None, duration: float | Tensor | None = None
    ) -> Tensor:
        """The state `(B, D)` a time `duration` after `z` `(B, D)` under action `u` `(B, A)`.

        `duration` defaults to `dt`; a negative one integrates backwards (leapfrog steps with
        `-dt` undo forward steps up to rounding); a tensor `(B,)` gives each sample its own.
        Uses the integrator of the current mode.
        """
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        span = as_duration(self.dt if duration is None else duration, z.shape[0], z)
        return self._flow(z, u, span)

    def _flow(self, z: Tensor, u: Tensor, duration: float | Tensor) -> Tensor:
        return self.system.advance(
            z,
            self._scaled_control(u),
            self.active_integrator,
            duration,
            self.active_substeps,
            self.config.state_layout,
        )

    def _scaled_control(self, u: Tensor) -> Tensor | None:
        # Scale without a shift, so that the force stays linear in u and zero at u = 0.
        return u / self.action_norm.std if self.action_dim else None

    def energy(self, z: Tensor) -> Tensor:
        """The learned Hamiltonian `H(z)` `(B,)` of states `z` `(B, D)`, in the data's units."""
        return self.system.state_energy(self._check_state(z), self.config.state_layout)

    def time_derivative(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """The learned field `dz/dt` `(B, D)` at `[q, p]` states `z` `(B, D)` under `u`."""
        if self.config.state_layout != "qp":
            raise ValueError("time_derivative is defined for [q, p] states only")
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        return self._time_derivative(z, u)

    def _time_derivative(self, z: Tensor, u: Tensor) -> Tensor:
        n = self.q_dim
        dq, dp = self.system.rates(z[..., :n], z[..., n:], self._scaled_control(u))
        return torch.cat((dq, dp), dim=-1)

    def mass_matrix(self, q: Tensor) -> Tensor:
        """`M(q)` `(B, n, n)` of the mechanical form at positions `q` `(B, n)`."""
        energy = self.system.energy
        if not isinstance(energy, MechanicalEnergy):
            raise ValueError(f"mass_matrix needs form='mechanical', not {self.config.form!r}")
        if q.ndim != 2 or q.shape[-1] != self.q_dim:
            raise ValueError(f"q has shape {tuple(q.shape)}, expected (B, {self.q_dim})")
        return energy.mass_matrix(q.to(self.dtype), self.system.scales)

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        """The loss on windows `states (B, T+1, D)`, `actions (B, T, A)`.

        `training='trajectory'` (and any call with `initial_states`, which only a rollout can
        use) is the base class's state loss. `training='derivative'` compares the field at
        each transition's midpoint with the finite difference `(z_{t+1} - z_t) / dt`, in units
        of the typical rate `delta_std / dt`.
        """
        if self.config.training == "trajectory" or initial_states is not None:
            return super().training_loss(states, actions, loss=loss, initial_states=initial_states)
        states = self._check_states(states)
        b, t1, d = states.shape
        actions = self._check_actions(actions, b, t1 - 1)
        midpoints = 0.5 * (states[:, 1:] + states[:, :-1])
        rates = (states[:, 1:] - states[:, :-1]) / self.dt
        predicted = self._time_derivative(
            midpoints.reshape(b * (t1 - 1), d), actions.reshape(b * (t1 - 1), self.action_dim)
        )
        scale = self.delta_norm.std / self.dt
        if self.config.probabilistic:
            # The rate error over dt is a state-change error: the same noise scale, log_noise.
            if loss != "l2":
                raise ValueError(
                    f"a probabilistic model trains on the Gaussian likelihood; loss must be "
                    f"'l2', got {loss!r}"
                )
            assert self.log_noise is not None
            error = (predicted.reshape(b, t1 - 1, d) - rates) / scale
            return gaussian_nll(error, 2.0 * self.log_noise)
        return state_error(predicted.reshape(b, t1 - 1, d), rates, scale, loss)
