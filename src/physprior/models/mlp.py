"""`mlp`: the standard model-based RL dynamics model, an MLP predicting the state change."""

from __future__ import annotations

import dataclasses
from typing import Literal, final

import torch
from torch import Tensor

from ._base import Memory, ModelConfig, TransitionModel
from ._normalized_mlp import FoldedMLP, NormalizedMLP
from ._registry import register
from ._rollout import rollout_inputs

__all__ = ["MLPDelta", "MLPDeltaConfig"]


@dataclasses.dataclass
class MLPDeltaConfig(ModelConfig):
    """Configuration of `mlp`; the fields below differ from `ModelConfig`'s defaults.

    `hidden`, `layers`: 2 layers of 128 units by default, the size of the other models here.
    mbrl-lib's `GaussianMLP` defaults to `num_layers=4`, `hid_size=200` (its PETS and MBPO
    example configs use SiLU); pass `hidden=200, layers=4` for that size.

    The integrator fields (`integrator`, `test_integrator`, `substeps`) are ignored: the model
    is a direct map over one interval `dt`, with no ODE to integrate.
    """

    activation: str = "silu"
    """Hidden activation; SiLU (swish), as in mbrl-lib and PETS."""
    train_mode: Literal["single", "recurrent"] = "single"
    """`single` (the MBRL standard: one-step targets from observed states) or `recurrent`."""


@final
@register
class MLPDelta(TransitionModel):
    """`z' = z + delta_norm.inverse(net([state_norm(z), action_norm(u)]))`.

    The network predicts the one-interval state change in normalised units: `delta_norm`
    (mean and standard deviation of `z_{t+1} - z_t` on the training split) maps it back to state
    units, so a zero output predicts the mean change. Inputs are normalised with `state_norm`
    and `action_norm`. Shapes: `z (B, D)`, `u (B, A)`, output `(B, D)`; units are the data's.

    This is the deterministic core of mbrl-lib's `GaussianMLP` (the default model of PETS and
    MBPO): the same normalised inputs and state-change target, without its probabilistic head
    (predicted variance) and ensemble, which belong to a later issue; it is trained with the
    trainer's L2 or L1 loss instead of a Gaussian log-likelihood. No physics prior.

    With `normalize=False` the step is `z + dt * net(z, u)` on raw coordinates: the residual
    network ("ResNet") the VIN authors use as their baseline (`hidden=1000, layers=1,
    activation="tanh"`, their `models.py`).
    """

    name = "mlp"
    config_class = MLPDeltaConfig
    config: MLPDeltaConfig

    def __init__(self, config: MLPDeltaConfig) -> None:
        super().__init__(config)
        self.net = NormalizedMLP(
            config.obs_dim,
            config.action_dim,
            config.obs_dim,
            config.hidden,
            config.layers,
            config.activation,
        )

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        net = self._folded()
        return torch.add(z, net(z, net.input_bias(u))), None

    def rollout(
        self, z0: Tensor, actions: Tensor | None = None, *, steps: int | None = None
    ) -> Tensor:
        """Roll out from `z0 (B, D)` under `actions (B, T, A)`; returns `(B, T + 1, D)`.

        The normalisers are folded into the weights once for the whole rollout.
        """
        z, actions = rollout_inputs(self, z0, actions, steps)
        net = self._folded()
        biases = net.input_biases(actions)
        states = [z]
        for t in range(actions.shape[1]):
            z = torch.add(z, net(z, biases[t]))
            states.append(z)
        return torch.stack(states, dim=1)

    def _folded(self) -> FoldedMLP:
        """The network with input normalisation and the state-change scale folded in:
        `folded(z, input_bias(u)) = delta_norm.inverse(net(state_norm(z), action_norm(u)))`.
        The same function as the plain network (to rounding) in fewer, larger operations."""
        return self.net.fold(
            in_mean=self.state_norm.mean,
            in_std=self.state_norm.std,
            action_mean=self.action_norm.mean,
            action_std=self.action_norm.std,
            out_scale=self.delta_norm.std,
            out_offset=self.delta_norm.mean,
        )
