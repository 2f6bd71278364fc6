"""`rnn` and `lstm`: the recurrent baselines of the SRNN paper.

Both read `[state_norm(z_t), action_norm(u_t)]`, update a hidden memory, and predict the next
state as `z_{t+1} = z_t + delta_norm.inverse(Linear(h_t))`, the normalised state change read
out of the new hidden state. No physics prior.
"""

from __future__ import annotations

import dataclasses
from typing import final

import torch
from torch import Tensor, nn

from ._base import Memory, ModelConfig, TransitionModel
from ._registry import register

__all__ = ["LSTM", "RNN", "LSTMConfig", "RNNConfig"]


@dataclasses.dataclass
class RNNConfig(ModelConfig):
    """Configuration of `rnn`. `hidden` is the size of the hidden state (the SRNN paper: 2048
    for SpringChain, 512 for ThreeBody; default 128). `layers`, `activation` and the
    integrator fields are ignored: one `tanh` cell, no ODE.

    `train_mode`: `recurrent` runs the cell through the window (backpropagation through time);
    `single` starts every one-step piece from a zero hidden state.
    """


@dataclasses.dataclass
class LSTMConfig(ModelConfig):
    """Configuration of `lstm`; the same fields as `RNNConfig` (`hidden` is the size of both
    the hidden and the cell state)."""


@final
@register
class RNN(TransitionModel):
    """A vanilla (Elman) RNN: `h_t = tanh(W_x x_t + W_h h_{t-1} + b)`, `x_t = [z_hat, u_hat]`.

    `z_{t+1} = z_t + delta_norm.inverse(W_o h_t + b_o)`. The memory carried by
    `step_with_memory` is `h` `(B, hidden)`, zero at the start of every rollout (and of every
    one-step piece in `single` training mode); `rollout` feeds each prediction back as the next
    input (autoregressive), as at test time in the paper.

    Differences from the SRNN paper's baseline: the paper does not specify its readout; we read
    out the normalised state change rather than the state, as the other models do, so that an
    untrained model predicts the mean change and inputs and outputs are O(1). The action input
    is ours (the paper's systems are autonomous).
    """

    name = "rnn"
    config_class = RNNConfig
    config: RNNConfig

    def __init__(self, config: RNNConfig) -> None:
        super().__init__(config)
        self.cell = nn.RNNCell(config.obs_dim + config.action_dim, config.hidden)
        self.readout = nn.Linear(config.hidden, config.obs_dim)

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        hidden = self.cell(_cell_input(self, z, u), memory)
        return z + self.delta_norm.inverse(self.readout(hidden)), hidden


@final
@register
class LSTM(TransitionModel):
    """An LSTM cell (`torch.nn.LSTMCell`) fed `x_t = [z_hat, u_hat]`.

    `z_{t+1} = z_t + delta_norm.inverse(W_o h_t + b_o)`. The memory carried by
    `step_with_memory` is the pair `(h, c)`, each `(B, hidden)`, zero at the start of every
    rollout (and of every one-step piece in `single` training mode); `rollout` is
    autoregressive. Differences from the paper as for `RNN`.
    """

    name = "lstm"
    config_class = LSTMConfig
    config: LSTMConfig

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.cell = nn.LSTMCell(config.obs_dim + config.action_dim, config.hidden)
        self.readout = nn.Linear(config.hidden, config.obs_dim)

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        hidden, cell = self.cell(_cell_input(self, z, u), memory)
        return z + self.delta_norm.inverse(self.readout(hidden)), (hidden, cell)


def _cell_input(model: TransitionModel, z: Tensor, u: Tensor) -> Tensor:
    """`[state_norm(z), action_norm(u)]` `(B, D + A)`."""
    return torch.cat((model.state_norm(z), model.action_norm(u)), dim=-1)
