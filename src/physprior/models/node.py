"""`node`: a neural ODE (the SRNN paper's O-NET), an MLP vector field `dz/dt = f(z, u)`."""

from __future__ import annotations

import dataclasses
from typing import Any, final

import torch
from torch import Tensor

from physprior.integrators import get_integrator

from ._base import Memory, ModelConfig, NumpyRowStep, TransitionModel
from ._cache import inference_cached
from ._normalized_mlp import (
    AngleInputMLP,
    FoldedMLP,
    FoldedNet,
    NormalizedMLP,
    embedded_input_stats,
)
from ._numpy_row import NUMPY_UPDATES, NumpyMLP, as_row
from ._registry import register
from ._rollout import rollout_inputs

__all__ = ["NODE", "NODEConfig"]


@dataclasses.dataclass
class NODEConfig(ModelConfig):
    """Configuration of `node`. Every field is a `ModelConfig` field; these matter most:

    `hidden`, `layers`, `activation`: the MLP `f`. The SRNN paper's O-NET is 1 hidden layer
    of 2048 tanh units for SpringChain and 3 layers of 512 for ThreeBody; decon-hnn uses 2 of
    128 (the default here).

    `integrator`, `test_integrator`, `substeps`: how `f` is integrated over each observation
    interval `dt` in training and in evaluation (`euler`, `rk4`, `leapfrog`,
    `symplectic_euler`; the papers' E-E, E-L, L-L labels), with step `h = dt / substeps`.
    The split integrators need as many positions as momenta (`q_dim == obs_dim / 2`).

    `train_mode`: `single` (one-step pieces) or `recurrent` (roll out through the window).
    """

    supports_angle_embedding = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in (self.integrator, self.test_integrator):
            if name is not None and get_integrator(name).requires_split:
                if 2 * self.v_dim != self.obs_dim:
                    raise ValueError(
                        f"integrator {name!r} splits the state into equal halves [q, p]; "
                        f"node got q_dim={self.q_dim} and obs_dim={self.obs_dim}"
                    )


@final
@register
class NODE(TransitionModel):
    """A neural ODE: `dz/dt = f(z, u)` with `f` an MLP, integrated over each interval `dt`.

    The field, in the data's own units (state units per time unit):

        dz/dt = (delta_mean + delta_std * net([z_hat, u_hat])) / dt

    with `z_hat = state_norm(z)`, `u_hat = action_norm(u)` and `delta_mean`, `delta_std` the
    statistics of one-interval state changes (`delta_norm`, fitted on the training split; the
    identity before). So the network sees and emits O(1) numbers while the integrated model is
    exactly an ODE in the original coordinates, and a zero network output predicts the mean
    change. The action is an input of the network, held constant over the interval.

    Integration uses `active_integrator` (`config.integrator` in training mode,
    `config.test_integrator` in evaluation mode) with `config.substeps` steps of
    `h = dt / substeps`. Euler and RK4 use `f` as a whole. Leapfrog and symplectic Euler use
    the split field `dq/dt = f(z)[:q_dim]`, `dp/dt = f(z)[q_dim:]`, both functions of the full
    state: the field is neither separable nor Hamiltonian, so leapfrog is an explicit
    approximation here, not symplectic and not guaranteed second order since `dq/dt` depends on
    `q` (see `physprior.integrators.leapfrog_update`); it costs four network evaluations a step.

    Shapes: `z (B, D)`, `u (B, A)`, `rollout(z0 (B, D), actions (B, T, A)) -> (B, T + 1, D)`.

    Differences from the papers: the SRNN paper describes its O-NET without an action input or
    any normalisation; decon-hnn's NODE takes the action as an input and normalises inputs and
    outputs with location/scale buffers, as here.
    """

    name = "node"
    config_class = NODEConfig
    config: NODEConfig

    def __init__(self, config: NODEConfig) -> None:
        super().__init__(config)
        angles = self.q_dim if config.angle_embedding else 0
        self.net = NormalizedMLP(
            config.obs_dim + angles,
            config.action_dim,
            config.obs_dim,
            config.hidden,
            config.layers,
            config.activation,
        )

    def vector_field(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """`dz/dt` `(B, D)` at states `z (B, D)` under actions `u (B, A)`."""
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        net = self._folded()
        return net(z, net.input_bias(u))

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        net = self._folded()
        return self._advance(net, z, net.input_bias(u)), None

    def rollout(
        self, z0: Tensor, actions: Tensor | None = None, *, steps: int | None = None
    ) -> Tensor:
        """Roll out from `z0 (B, D)` under `actions (B, T, A)` (or `steps=T` without actions).

        Returns `(B, T + 1, D)`. The folded network and every step's action term are computed
        once for the whole rollout.
        """
        z, actions = rollout_inputs(self, z0, actions, steps)
        net = self._folded()
        biases = net.input_biases(actions)
        states = [z]
        for t in range(actions.shape[1]):
            z = self._advance(net, z, biases[t])
            states.append(z)
        return torch.stack(states, dim=1)

    def numpy_row_step(self) -> NumpyRowStep | None:
        """The field integrated on one row in numpy (see `TransitionModel`) with the active
        integrator, where it is `euler` or `rk4`; None with a split integrator or an angle
        embedding, which step in torch."""
        return self._numpy_row_step(self.active_integrator.name, self.active_substeps)

    # ------------------------------------------------------------------ parts
    @inference_cached
    def _numpy_row_step(self, integrator: str, substeps: int) -> NumpyRowStep | None:
        update = NUMPY_UPDATES.get(integrator)
        folded = self._folded()
        net = NumpyMLP.of(folded) if isinstance(folded, FoldedMLP) else None
        if update is None or net is None:
            return None
        h, dtype = self.dt / substeps, net.dtype

        def step(z: Any, u: Any) -> Any:
            z = as_row(z, self.obs_dim, "z", dtype)
            bias = net.input_bias(as_row(u, self.action_dim, "u", dtype))

            def field(x: Any) -> Any:
                return net(x, bias)

            for _ in range(substeps):
                z = update(field, z, h)
            return z

        return step

    @inference_cached
    def _folded(self) -> FoldedNet:
        dt = self.dt
        mean, std = self.state_norm.mean, self.state_norm.std
        if self.config.angle_embedding:
            mean, std = embedded_input_stats(mean, std, self.q_dim)
        net = self.net.fold(
            in_mean=mean,
            in_std=std,
            action_mean=self.action_norm.mean,
            action_std=self.action_norm.std,
            out_scale=self.delta_norm.std / dt,
            out_offset=self.delta_norm.mean / dt,
        )
        return AngleInputMLP(net, self.q_dim) if self.config.angle_embedding else net

    def _advance(self, net: FoldedNet, z: Tensor, bias: Tensor) -> Tensor:
        """The state one interval after `z`, the action's term `bias` held constant."""
        integrator = self.active_integrator
        substeps = self.active_substeps
        h = self.dt / substeps
        if integrator.requires_split:
            return integrator.advance(_SplitNetField(net, bias, self.q_dim), z, h, substeps)
        return integrator.advance(_NetField(net, bias), z, h, substeps)


@dataclasses.dataclass(frozen=True)
class _NetField:
    """`z -> dz/dt` of a folded network for one held action (its first-layer term `bias`)."""

    net: FoldedNet
    bias: Tensor

    def __call__(self, z: Tensor) -> Tensor:
        return self.net(z, self.bias)


@dataclasses.dataclass(frozen=True)
class _SplitNetField:
    """The same field split as `(position_rate, momentum_rate)` for the split integrators.

    Each rate evaluates the hidden layers on the full state and only its own output columns.
    """

    net: FoldedNet
    bias: Tensor
    q_dim: int
    separable: bool = False

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return self.net((q, p), self.bias, slice(None, self.q_dim))

    def momentum_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return self.net((q, p), self.bias, slice(self.q_dim, None))
