"""`mlp`: the standard model-based RL dynamics model, an MLP predicting the state change."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal, cast, final

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import Memory, ModelConfig, NumpyRowStep, StackedRollout, TransitionModel
from ._cache import inference_cached
from ._normalized_mlp import FoldedMLP, NormalizedMLP, StackedMLP
from ._numpy_row import NumpyMLP, as_row
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

    This is mbrl-lib's `GaussianMLP` (the default model of PETS and MBPO): the same normalised
    inputs and state-change target. By default deterministic, trained with the trainer's L2 or
    L1 loss. With `probabilistic=True` it is PETS's probabilistic network: the last layer also
    emits a log-variance per coordinate of the normalised state change, softly bounded between
    learned limits (`max_log_var` from 0.5, `min_log_var` from -10, PETS's initial values:
    `max - softplus(max - v)`, then `min + softplus(v - min)`), trained on the Gaussian
    negative log-likelihood plus PETS's `0.01 * (sum max_log_var - sum min_log_var)`, which
    keeps the limits tight (mbrl-lib keeps them fixed unless `learn_logvar_bounds`; PETS
    learns them). Ensembles of it: `make("ensemble", member="mlp", ...)`. No physics prior.

    With `normalize=False` the step is `z + dt * net(z, u)` on raw coordinates: the residual
    network ("ResNet") the VIN authors use as their baseline (`hidden=1000, layers=1,
    activation="tanh"`, their `models.py`).
    """

    name = "mlp"
    config_class = MLPDeltaConfig
    config: MLPDeltaConfig
    heteroscedastic = True

    def __init__(self, config: MLPDeltaConfig) -> None:
        super().__init__(config)
        d = config.obs_dim
        self.net = NormalizedMLP(
            d,
            config.action_dim,
            2 * d if config.probabilistic else d,  # [state change, log-variance]
            config.hidden,
            config.layers,
            config.activation,
        )
        if config.probabilistic:
            self.max_log_var = nn.Parameter(torch.full((d,), 0.5))
            self.min_log_var = nn.Parameter(torch.full((d,), -10.0))

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        net = self._folded()
        return torch.add(z, net(z, net.input_bias(u))[:, : self.obs_dim]), None

    @inference_cached
    def numpy_row_step(self) -> NumpyRowStep | None:
        """`z + net(z, u)` on one row in numpy (see `TransitionModel`); a probabilistic
        model's mean step, as `step`."""
        net = NumpyMLP.of(self._folded())
        if net is None:
            return None
        d, a, dtype = self.obs_dim, self.action_dim, net.dtype

        def step(z: Any, u: Any) -> Any:
            z = as_row(z, d, "z", dtype)
            return z + net(z, net.input_bias(as_row(u, a, "u", dtype)))[:d]

        return step

    def _distribution(self, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        net = self._folded()
        out = net(z, net.input_bias(u))
        d = self.obs_dim
        raw = out[:, d:]  # the normalised change's log-variance, softly bounded:
        bounded = self.max_log_var - F.softplus(self.max_log_var - raw)
        bounded = self.min_log_var + F.softplus(bounded - self.min_log_var)
        return z + out[:, :d], bounded + 2.0 * self.delta_norm.std.log()

    def _variance_penalty(self) -> Tensor:
        return 0.01 * (self.max_log_var.sum() - self.min_log_var.sum())

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
        d = self.obs_dim
        for t in range(actions.shape[1]):
            z = torch.add(z, net(z, biases[t])[:, :d])
            states.append(z)
        return torch.stack(states, dim=1)

    @classmethod
    def stacked_rollout(cls, members: Sequence[TransitionModel]) -> StackedRollout:
        """K `mlp` members rolled out together: their folded networks stacked
        (`StackedMLP`), one batched product per layer and step for all members. The same
        function per member as `rollout` (deterministic) or `noisy_rollout` (probabilistic,
        with `noise`), to rounding."""
        models = cast(list[MLPDelta], list(members))
        net = StackedMLP.stack([m._folded() for m in models])
        d = models[0].obs_dim
        probabilistic = models[0].config.probabilistic
        if probabilistic:
            # The standard deviation of the bounded log-variance
            # `v = low + softplus(high - softplus(high - raw) - low)` in closed form:
            # exp(v / 2) = exp(low / 2) * sqrt(1 + exp(high - low) * sigmoid(raw - high)),
            # a sigmoid and a square root per step instead of two softplus and an
            # exponential (the same function to rounding). `- high` goes into the last
            # layer's bias; exp(low / 2) and the state change's training std scale the noise
            # once for all steps.
            high = torch.stack([m.max_log_var for m in models]).unsqueeze(1)  # (K, 1, D)
            low = torch.stack([m.min_log_var for m in models]).unsqueeze(1)
            gap = (high - low).exp()
            shift = torch.cat((torch.zeros_like(high), high), dim=-1)
            net = dataclasses.replace(net, out_bias=net.out_bias - shift)
            change_std = torch.stack([m.delta_norm.std for m in models]).unsqueeze(1)
            noise_scale = (0.5 * low).exp() * change_std
            ones = torch.ones_like(gap)

        def rollout(z: Tensor, actions: Tensor, noise: Tensor | None) -> Tensor:
            if noise is not None and not probabilistic:
                raise ValueError("noise needs probabilistic members (probabilistic=True)")
            biases = net.input_biases(actions)  # (K, T, B, H)
            scaled_noise = None if noise is None else noise * noise_scale.unsqueeze(2)
            states = [z]
            for t in range(actions.shape[2]):
                out = net(z, biases[:, t])
                z = z + out[..., :d]
                if scaled_noise is not None:
                    spread = torch.addcmul(ones, gap, torch.sigmoid(out[..., d:])).sqrt_()
                    z = torch.addcmul(z, spread, scaled_noise[:, :, t])
                states.append(z)
            return torch.stack(states, dim=2)

        return rollout

    @inference_cached
    def _folded(self) -> FoldedMLP:
        """The network with input normalisation and the state-change scale folded in:
        `folded(z, input_bias(u)) = delta_norm.inverse(net(state_norm(z), action_norm(u)))`.
        The same function as the plain network (to rounding) in fewer, larger operations."""
        scale, offset = self.delta_norm.std, self.delta_norm.mean
        if self.config.probabilistic:  # the log-variance rows stay in normalised units
            scale = torch.cat((scale, torch.ones_like(scale)))
            offset = torch.cat((offset, torch.zeros_like(offset)))
        return self.net.fold(
            in_mean=self.state_norm.mean,
            in_std=self.state_norm.std,
            action_mean=self.action_norm.mean,
            action_std=self.action_norm.std,
            out_scale=scale,
            out_offset=offset,
        )
