"""decon-hnn's Figure 7 "HNN", as the authors' code builds it, for the `decon-mujoco` suite.

The model behind the HNN bars of decon-hnn's Figure 7 is `MixtureHNN`
(github.com/ngruver/decon-hnn, `src/models/dynamics_models.py`, trained by `mujoco.py`; the
notebook `bar_plots.ipynb` labels it SymODEN). It is not the mechanical HNN of physprior's
`hnn` model, and it has traits that explain the paper's finding that the HNN fits MuJoCo data
worst. This class reproduces them on purpose, so that the suite can show where the paper's
gap comes from; it is not a model to use:

- the mass matrix is switched off (`M = I`, so the momentum is the velocity);
- `H(q~, p~) = |p~|^2 / 2 + V(q~)` is evaluated on the *standardised* state
  `[q~, p~] = ([q, v] - mean) / std` of the training data, and its gradients are taken with
  respect to the standardised variables: `dq/dt = dH/dp~ = (v - mean_v) / std_v`, not `v`;
- a free force network of the standardised `[q, v, u]` is added to `dp/dt`, unscaled;
- one Euler step per observation interval `dt` (the paper's text says 8 substeps).

Every network has `layers` hidden layers of `hidden` tanh units (the authors: 2 x 128),
initialised orthogonally with gain 0.5 and zero biases, as theirs. Their mass network, whose
output is multiplied by zero, is left out: it changes nothing.

Shapes: states `(B, 2n)` laid out `[q, v]`, actions `(B, A)`.
"""

from __future__ import annotations

from typing import ClassVar, final

import torch
from torch import Tensor, nn

from physprior.models import ModelConfig, TransitionModel
from physprior.models._hamiltonian import mlp_gradient
from physprior.models._parts import mlp

__all__ = ["DeconMixtureHNN"]


@final
class DeconMixtureHNN(TransitionModel):
    """decon-hnn's `MixtureHNN` with its mass matrix off (module docstring)."""

    name: ClassVar[str] = "decon-mixture-hnn"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        if config.state_layout != "qv" or 2 * config.v_dim != config.obs_dim:
            raise ValueError("the decon-hnn MixtureHNN reads [q, v] states with as many v as q")
        n = self.q_dim
        self.potential_net = mlp(n, 1, config.hidden, config.layers, "tanh")
        self.force_net = mlp(2 * n + config.action_dim, n, config.hidden, config.layers, "tanh")
        for layer in [*self.potential_net, *self.force_net]:
            if isinstance(layer, nn.Linear):
                nn.init.orthogonal_(layer.weight, gain=0.5)
                nn.init.zeros_(layer.bias)

    def field(self, z: Tensor, u: Tensor) -> Tensor:
        """`d[q, p]/dt` `(B, 2n)` at raw states `z (B, 2n)` under actions `u (B, A)`."""
        n = self.q_dim
        standard = self.state_norm(z)
        dq_dt = standard[:, n:]  # dH/dp~ = p~ = the standardised velocity
        dp_dt = -mlp_gradient(self.potential_net, standard[:, :n])
        inputs = torch.cat((standard, self.action_norm(u)), dim=-1) if self.action_dim else standard
        return torch.cat((dq_dt, dp_dt + self.force_net(inputs)), dim=-1)

    def step_with_memory(self, z: Tensor, u: Tensor, memory: object = None) -> tuple[Tensor, None]:
        # One Euler step over dt; with M = I the momentum read back is the velocity.
        return z + self.dt * self.field(z, u), None
