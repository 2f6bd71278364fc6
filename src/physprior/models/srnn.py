"""`srnn`: the symplectic recurrent neural network of Chen et al. (2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, final

import torch
from torch import Tensor

from ._base import Memory, ModelConfig, TransitionModel
from ._hamiltonian import (
    SMOOTH_ACTIVATIONS,
    Forcing,
    HamiltonianSystem,
    NetSize,
    SeparableEnergy,
    as_duration,
)
from ._registry import register

__all__ = ["SRNN", "SRNNConfig"]


@dataclass
class SRNNConfig(ModelConfig):
    """Configuration of :class:`SRNN`: the shared fields of `ModelConfig` with the paper's
    defaults, and the initial-state optimisation (ISO) settings.

    Defaults follow the spring-chain experiment (appendix A.1): `K(p)` and `V(q)` each one
    hidden layer of 2048 tanh units, leapfrog for training and testing, recurrent training. The
    three-body experiment (A.2) used `hidden=512, layers=3`. The paper's H-NET sees raw
    coordinates; here each half is normalised on its own, which keeps `H` separable and the
    leapfrog flow exactly symplectic in the data's units.

    The ISO fields describe how this model is meant to be trained and evaluated; initial-state
    optimisation itself is model-agnostic and lives in `physprior.training` (the paper applies
    it to O-NET, RNN and LSTM too), which fits `training_loss(..., initial_states=z0)` over
    the window's initial states. The model only carries the settings.
    """

    hidden: int = 2048
    """Width of the hidden layers of `K(p)` and of `V(q)` (and of the control input matrix)."""
    layers: int = 1
    """Number of hidden layers of each network."""
    integrator: str = "leapfrog"
    """Integrator used while training; the paper's SRNN is leapfrog-leapfrog ("L-L")."""
    test_integrator: str | None = "leapfrog"
    """Integrator used for evaluation and rollouts."""
    train_mode: Literal["single", "recurrent"] = "recurrent"
    """`recurrent` (the SRNN): the loss rolls out through all T steps of a window;
    `single`: the single-step H-NET of the paper's tables."""
    iso: bool = True
    """Use initial-state optimisation: the initial state of every training window becomes a
    free parameter refined by L-BFGS with the network fixed, and at test time the initial
    state is fitted to the first `iso_test_steps` observed states before the rollout."""
    iso_warmup_epochs: int = 100
    """Epochs of ordinary training before the first ISO round; after it, one round per epoch."""
    iso_iterations: int = 20
    """L-BFGS iterations per ISO round."""
    iso_test_steps: int = 10
    """Observed states (the first included, at least 2) the test-time ISO fits to."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.state_layout != "qp":
            raise ValueError("srnn needs [q, p] data (state_layout='qp'); its H is K(p) + V(q)")
        if self.obs_dim != 2 * self.v_dim:
            raise ValueError(
                f"srnn needs as many momenta as positions: obs_dim={self.obs_dim} with "
                f"q_dim={self.q_dim}"
            )
        if self.activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(
                f"srnn needs a smooth activation (its field is the network's gradient), got "
                f"{self.activation!r}; valid: {', '.join(SMOOTH_ACTIVATIONS)}"
            )
        if self.iso_warmup_epochs < 0:
            raise ValueError(f"iso_warmup_epochs must be >= 0, got {self.iso_warmup_epochs}")
        if self.iso_iterations < 1:
            raise ValueError(f"iso_iterations must be >= 1, got {self.iso_iterations}")
        if self.iso_test_steps < 2:
            raise ValueError(f"iso_test_steps must be >= 2, got {self.iso_test_steps}")


@register
@final
class SRNN(TransitionModel):
    """A separable learned Hamiltonian `H = K(p) + V(q)` stepped by leapfrog (by default).

    `dq/dt = dK/dp`, `dp/dt = -dV/dq + G(q) u`: the control (divided by its fitted scale, no
    shift) is a generalised force on the momenta through a learned `(n, A)` input matrix;
    without actions the system is conservative and leapfrog steps are symplectic and
    time-reversible, in the data's units. `K = E * net_K(p_hat)`, `V = E * net_V(q_hat)` with
    `E` an energy unit fitted from data.

    Shapes: states `(B, D)` laid out `[q, p]` with `D = 2n`, actions `(B, A)`.

    >>> import torch, physprior.models as models
    >>> model = models.make("srnn", obs_dim=4, dt=0.1, hidden=16).double().eval()
    >>> z0 = torch.randn(2, 4, dtype=torch.float64)
    >>> back = model.flow(model.flow(z0), duration=-model.dt)
    >>> bool(torch.allclose(back, z0, rtol=0, atol=1e-12))
    True
    """

    name: ClassVar[str] = "srnn"
    config_class: ClassVar[type[ModelConfig]] = SRNNConfig
    config: SRNNConfig

    def __init__(self, config: SRNNConfig) -> None:
        if not isinstance(config, SRNNConfig):
            raise TypeError(f"SRNN needs an SRNNConfig, got {type(config).__name__}")
        super().__init__(config)
        n = self.q_dim
        size = NetSize(config.hidden, config.layers, config.activation)
        self.system = HamiltonianSystem(
            SeparableEnergy(n, size),
            forcing=Forcing(n, config.action_dim, size) if config.action_dim else None,
        )

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Fit the normalisers, then the energy and force units from them."""
        super().fit_normalization(states, actions)
        self.system.scales.fit(
            self.state_norm.mean, self.state_norm.std, self.delta_norm.std, self.dt, "qp"
        )

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        return self._flow(z, u, self.dt), None

    def flow(
        self, z: Tensor, u: Tensor | None = None, duration: float | Tensor | None = None
    ) -> Tensor:
        """The state `(B, D)` a time `duration` after `z` `(B, D)` under action `u` `(B, A)`.

        `duration` defaults to `dt`; a negative one runs backwards: with leapfrog, stepping
        back `-dt` undoes a step up to rounding (time reversibility). A tensor `(B,)` gives
        each sample its own span.
        """
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        span = as_duration(self.dt if duration is None else duration, z.shape[0], z)
        return self._flow(z, u, span)

    def _flow(self, z: Tensor, u: Tensor, duration: float | Tensor) -> Tensor:
        control = u / self.action_norm.std if self.action_dim else None
        return self.system.advance(
            z, control, self.active_integrator, duration, self.active_substeps
        )

    def energy(self, z: Tensor) -> Tensor:
        """The learned Hamiltonian `K(p) + V(q)` `(B,)` of states `z` `(B, D)`."""
        return self.system.state_energy(self._check_state(z), "qp")
