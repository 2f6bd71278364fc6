"""`rnn` and `lstm`: the recurrent baselines of the SRNN paper.

Both read the state and the action, update a hidden memory and predict the next state. No
physics prior. Two forms, chosen by `readout`:

- `"delta"` (physprior's, the default): the cell reads `[state_norm(z_t), action_norm(u_t)]`
  and the model predicts `z_{t+1} = z_t + delta_norm.inverse(Linear(h_t))`, the normalised
  state change read out of the new hidden state, as the other models do: an untrained model
  predicts the mean change and every input and output is O(1).
- `"state"` and `"hidden"`: the SRNN authors' baselines (github.com/zhengdao-chen/SRNN,
  `src/model.py`), which the paper does not describe. The cell reads the raw `[z_t, u_t]`.
  `"state"` (their RNN) predicts the next state directly, `z_{t+1} = Linear(h_t)`, unbounded;
  `"hidden"` (their LSTM) takes the hidden state itself as the prediction, `z_{t+1} = h_t`, so
  `hidden` must equal `obs_dim` and every prediction lies in `(-1, 1)` (the authors' LSTM has a
  hidden size of 40 on the 40-dimensional chain, whose states reach 2.5 and more).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, final

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._base import Memory, ModelConfig, TransitionModel
from ._registry import register

__all__ = ["LSTM", "RNN", "LSTMConfig", "RNNConfig"]

Readout = Literal["delta", "state", "hidden"]
_READOUTS: tuple[str, ...] = ("delta", "state", "hidden")


@dataclasses.dataclass
class RNNConfig(ModelConfig):
    """Configuration of `rnn`. `hidden` is the size of the hidden state (the SRNN paper: 2048
    for SpringChain, 512 for ThreeBody; default 128). `layers`, `activation` and the
    integrator fields are ignored: one `tanh` cell, no ODE.

    `train_mode`: `recurrent` runs the cell through the window (backpropagation through time);
    `single` starts every one-step piece from a zero hidden state.
    """

    readout: Readout = "delta"
    """How the next state is read out (module docstring): `"delta"` (physprior's), `"state"`
    (the SRNN authors' RNN) or `"hidden"` (the SRNN authors' LSTM; needs `hidden == obs_dim`).
    `"state"` and `"hidden"` feed the cell raw, unnormalised inputs, as the authors do."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.readout not in _READOUTS:
            raise ValueError(f"readout must be one of {_READOUTS}, got {self.readout!r}")
        if self.readout == "hidden" and self.hidden != self.obs_dim:
            raise ValueError(
                f"readout='hidden' predicts the hidden state itself, so hidden must equal "
                f"obs_dim={self.obs_dim}, got hidden={self.hidden}"
            )


@dataclasses.dataclass
class LSTMConfig(RNNConfig):
    """Configuration of `lstm`; the same fields as `RNNConfig` (`hidden` is the size of both
    the hidden and the cell state)."""


@final
@register
class RNN(TransitionModel):
    """A vanilla (Elman) RNN: `h_t = tanh(W_x x_t + W_h h_{t-1} + b)`, `x_t` the state and
    action (normalised or raw, per `readout`).

    The next state is read out of `h_t` per `config.readout` (module docstring). The memory
    carried by `step_with_memory` is `h` `(B, hidden)`, zero at the start of every rollout
    (and of every one-step piece in `single` training mode); `rollout` feeds each prediction
    back as the next input (autoregressive), as at test time in the paper. The action input is
    ours (the paper's systems are autonomous).
    """

    name = "rnn"
    config_class = RNNConfig
    config: RNNConfig
    supports_probabilistic = False
    memoryless = False

    def __init__(self, config: RNNConfig) -> None:
        super().__init__(config)
        self.cell = nn.RNNCell(config.obs_dim + config.action_dim, config.hidden)
        self.readout = _make_readout(config)

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        x = _cell_input(self, z, u)
        # nn.RNNCell written out (same parameters and arithmetic), as the LSTM's cell below:
        # vmap (an `ensemble`) has no batching rule for aten::rnn_tanh_cell.
        weights = self.cell
        pre = F.linear(x, weights.weight_ih, weights.bias_ih)
        if memory is not None:
            pre = pre + F.linear(memory, weights.weight_hh, weights.bias_hh)
        else:
            pre = pre + weights.bias_hh
        hidden = torch.tanh(pre)
        return _next_state(self, z, hidden), hidden


@final
@register
class LSTM(TransitionModel):
    """An LSTM cell (`torch.nn.LSTMCell`) fed the state and action.

    The next state is read out of the hidden state `h_t` per `config.readout`. The memory
    carried by `step_with_memory` is the pair `(h, c)`, each `(B, hidden)`, zero at the start
    of every rollout (and of every one-step piece in `single` training mode); `rollout` is
    autoregressive. Differences from the paper as for `RNN`.
    """

    name = "lstm"
    config_class = LSTMConfig
    config: LSTMConfig
    supports_probabilistic = False
    memoryless = False

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__(config)
        self.cell = nn.LSTMCell(config.obs_dim + config.action_dim, config.hidden)
        self.readout = _make_readout(config)

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        x = _cell_input(self, z, u)
        if memory is None:
            hidden = cell = x.new_zeros(x.shape[0], self.config.hidden)
        else:
            hidden, cell = memory
        # nn.LSTMCell's gates written out (same parameters and arithmetic): vmap (an
        # `ensemble` steps its members in one vmapped call) has no rule for aten::lstm_cell.
        weights = self.cell
        gates = F.linear(x, weights.weight_ih, weights.bias_ih)
        gates = gates + F.linear(hidden, weights.weight_hh, weights.bias_hh)
        in_gate, forget_gate, candidate, out_gate = gates.chunk(4, dim=-1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(in_gate) * torch.tanh(candidate)
        hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
        return _next_state(self, z, hidden), (hidden, cell)


def _make_readout(config: RNNConfig) -> nn.Module:
    """The output layer: a Linear map of the hidden state, or none for `readout="hidden"`."""
    if config.readout == "hidden":
        return nn.Identity()
    return nn.Linear(config.hidden, config.obs_dim)


def _cell_input(model: RNN | LSTM, z: Tensor, u: Tensor) -> Tensor:
    """`[state_norm(z), action_norm(u)]` `(B, D + A)`, or the raw `[z, u]` for the authors'
    readouts."""
    if model.config.readout == "delta":
        return torch.cat((model.state_norm(z), model.action_norm(u)), dim=-1)
    return torch.cat((z, u), dim=-1)


def _next_state(model: RNN | LSTM, z: Tensor, hidden: Tensor) -> Tensor:
    """The predicted `z_{t+1}` `(B, D)` from the current state and the new hidden state."""
    out: Tensor = model.readout(hidden)
    if model.config.readout == "delta":
        return z + model.delta_norm.inverse(out)
    return out
