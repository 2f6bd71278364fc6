"""An MLP that reads normalised inputs and writes outputs in physical units, and its fast form.

`NormalizedMLP` holds the parameters of `out = offset + scale * net([x_hat, u_hat])`, where
`x_hat = (x - x_mean) / x_std` and `u_hat = (u - u_mean) / u_std` are the normalised state-like
input and action. The network is an ordinary MLP; the normalisation statistics and the output
scale live in the model's `Normalizer` buffers and are passed in.

`NormalizedMLP.fold(...)` returns a `FoldedMLP`: the same function with every affine map that
surrounds a matrix product folded into that product's weights, computed once per rollout:

* the input normalisation goes into the first layer (`W x_hat + b = (W / x_std) x + b'`), so a
  raw state is fed straight to `torch.addmm`;
* the first layer is split into a state part and an action part: the action part (and the
  bias) is one `(B, H)` tensor per transition, reused by every integrator substep;
* the output scale and offset go into the last layer (which may also select and repeat output
  rows, e.g. to emit `[h^2/2 a, h a]` from an acceleration `a` in one product);
* `tanh` is evaluated as `2 sigmoid(2 x) - 1` with the factor 2 and the shift folded into the
  neighbouring layers, because on CPU `torch.sigmoid` is about three times faster than
  `torch.tanh` (about 30 vs 100 us on a 200 x 128 batch, one thread of the AMD EPYC test
  machines); the function is the same up to rounding.

Rollouts of ODE models evaluate the network many times per transition (substeps times the
integrator's stages) on small batches, where each torch call costs microseconds whatever its
size; folding removes about half the calls of an evaluation.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "AngleInputMLP",
    "FoldedMLP",
    "FoldedNet",
    "NormalizedMLP",
    "StackedMLP",
    "embedded_input_stats",
]

#: Hidden activations by name (the names of `ModelConfig.activation`).
ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "relu": torch.relu,
    "silu": F.silu,
    "elu": F.elu,
}


class NormalizedMLP(nn.Module):
    """Parameters of `net([x_hat, u_hat])`: `in_dim + action_dim -> [hidden] * layers -> out_dim`.

    Args:
        in_dim: width X of the state-like input.
        action_dim: width A of the action input (0: none).
        out_dim: width O of the output.
        hidden: units per hidden layer.
        layers: number of hidden layers (at least 1).
        activation: a name in `ACTIVATION_FUNCTIONS`.

    The layers are `nn.Linear` modules in `self.linears` with PyTorch's default initialisation;
    the first one takes the concatenation `[x_hat, u_hat]`, exactly as a plain MLP would.
    """

    def __init__(
        self, in_dim: int, action_dim: int, out_dim: int, hidden: int, layers: int, activation: str
    ) -> None:
        super().__init__()
        if activation not in ACTIVATION_FUNCTIONS:
            raise ValueError(
                f"unknown activation {activation!r}; valid: {', '.join(ACTIVATION_FUNCTIONS)}"
            )
        if layers < 1:
            raise ValueError(f"this network needs at least one hidden layer, got layers={layers}")
        self.in_dim = int(in_dim)
        self.action_dim = int(action_dim)
        self.hidden = int(hidden)
        self.activation = activation
        widths = [self.in_dim + self.action_dim] + [int(hidden)] * layers + [int(out_dim)]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x_hat: Tensor, u_hat: Tensor | None = None) -> Tensor:
        """The raw network output `(B, O)` on normalised inputs `x_hat (B, X)`, `u_hat (B, A)`.

        The reference form: no folding. Models use `fold` on their hot paths.
        """
        h = x_hat if u_hat is None or self.action_dim == 0 else torch.cat((x_hat, u_hat), -1)
        act = ACTIVATION_FUNCTIONS[self.activation]
        *hidden, last = self._layers()
        for linear in hidden:
            h = act(linear(h))
        return last(h)

    def _layers(self) -> list[nn.Linear]:
        return [cast(nn.Linear, linear) for linear in self.linears]

    def fold(
        self,
        *,
        in_mean: Tensor,
        in_std: Tensor,
        action_mean: Tensor | None = None,
        action_std: Tensor | None = None,
        out_scale: Tensor | None = None,
        out_offset: Tensor | None = None,
        out_rows: Tensor | None = None,
    ) -> FoldedMLP:
        """`offset + scale * net([x_hat, u_hat])[..., rows]` of raw `x`, `u`, as a `FoldedMLP`.

        `in_mean`, `in_std` `(X,)` normalise `x`; `action_mean`, `action_std` `(A,)` normalise
        `u`. `out_rows` (long, `(R,)`, default all `O` outputs in order) selects, and may repeat,
        output rows; `out_scale`, `out_offset` `(R,)` then map them to physical units (default:
        none). Differentiable: gradients reach the parameters through the folded weights.

        Written with as few operations on the parameters as possible (about a dozen for two
        hidden layers): each one is a node of the autograd graph of every training step.
        """
        tanh = self.activation == "tanh"
        # tanh(a) = 2 sigmoid(2 a) - 1: layers see gain * a and emit s = sigmoid(gain * a), and
        # the hidden value alpha * s + beta is restored inside the next layer's weights.
        gain, alpha, beta = (2.0, 2.0, -1.0) if tanh else (1.0, 1.0, 0.0)
        act = torch.sigmoid if tanh else ACTIVATION_FUNCTIONS[self.activation]
        first, *middle, last = self._layers()

        # First layer: gain * (W (v - mean) / std + b) = (W * gain / std) v - (...) mean + gain b.
        mean, scale = in_mean, gain / in_std
        if self.action_dim:
            if action_mean is None or action_std is None:
                raise ValueError("fold: this network takes an action; pass its mean and std")
            mean = torch.cat((mean, action_mean))
            scale = torch.cat((scale, gain / action_std))
        first_weight = first.weight * scale  # (H, X + A)
        first_weight_t = first_weight.t()
        in_bias = torch.addmv(first.bias, first_weight, mean, beta=gain, alpha=-1.0)

        hidden: list[tuple[Tensor, Tensor]] = []
        for linear in middle:
            w: Tensor = linear.weight
            b: Tensor = linear.bias
            if tanh:  # gain * (alpha W s + beta W 1 + b)
                b = torch.addmv(b, w, w.new_full((w.shape[1],), beta), beta=gain, alpha=gain)
                w = w * (gain * alpha)
            hidden.append((w.t(), b))

        out_weight: Tensor = last.weight
        out_bias: Tensor = last.bias
        if out_rows is not None:
            out_weight, out_bias = out_weight[out_rows], out_bias[out_rows]
        rows = out_weight.shape[0]
        if out_scale is None:
            out_scale = out_weight.new_ones(rows)
        if out_offset is None:
            out_offset = out_weight.new_zeros(rows)
        if tanh:  # alpha W s + beta W 1 + b
            out_bias = torch.addmv(out_bias, out_weight, out_weight.new_full((self.hidden,), beta))
        return FoldedMLP(
            in_weight=first_weight_t[: self.in_dim],
            in_bias=in_bias,
            action_weight=first_weight_t[self.in_dim :] if self.action_dim else None,
            hidden=tuple(hidden),
            out_weight=(out_weight * (alpha * out_scale)[:, None]).t(),
            out_bias=torch.addcmul(out_offset, out_scale, out_bias),
            act=act,
        )


@dataclasses.dataclass(frozen=True)
class FoldedMLP:
    """A `NormalizedMLP` with normalisation and output scale folded into its weights.

    Built by `NormalizedMLP.fold`; valid until the parameters or normalisers change (build it
    once per rollout or training step, never cache it across optimiser steps). Weights are
    stored transposed, `(in, out)`, as `torch.addmm` wants them.

    Attributes:
        in_weight: `(X, H)`, multiplies the raw input `x`.
        in_bias: `(H,)`, the first layer's bias with the normalisation offsets folded in.
        action_weight: `(A, H)` multiplying the raw action, or `None` without actions.
        hidden: `(W (H, H), b (H,))` of each further hidden layer.
        out_weight: `(H, O)`; out_bias: `(O,)`.
        act: the activation applied after every hidden layer's affine map.
    """

    in_weight: Tensor
    in_bias: Tensor
    action_weight: Tensor | None
    hidden: tuple[tuple[Tensor, Tensor], ...]
    out_weight: Tensor
    out_bias: Tensor
    act: Callable[[Tensor], Tensor]

    def input_bias(self, u: Tensor) -> Tensor:
        """The first layer's action term plus bias: `(B, H)` for `u (B, A)`, `(H,)` if A = 0.

        Constant over a transition (the action is held), so computed once per transition.
        """
        if self.action_weight is None:
            return self.in_bias
        return torch.addmm(self.in_bias, u, self.action_weight)

    def input_biases(self, actions: Tensor) -> Tensor:
        """`input_bias` of every step of `actions (B, T, A)` at once, time-major: `(T, B, H)`.

        Time-major so that `result[t]` is a contiguous `(B, H)` block. Without actions the
        result is `(T, H)` (the bias, broadcast over the batch).
        """
        b, t, a = actions.shape
        if self.action_weight is None:
            return self.in_bias.expand(t, -1)
        flat = actions.transpose(0, 1).reshape(t * b, a)  # explicit sizes: T or B may be 0
        return torch.addmm(self.in_bias, flat, self.action_weight).view(t, b, self.in_bias.shape[0])

    def features(self, x: Tensor | tuple[Tensor, Tensor], bias: Tensor) -> Tensor:
        """The last hidden layer `(B, H)` at raw input `x (B, X)` (or its halves `(q, p)`).

        `bias` is `input_bias(u)`. Passing the halves of a split state saves concatenating them:
        the first layer's weight is split by rows instead.
        """
        if isinstance(x, tuple):
            first, second = x
            n = first.shape[-1]
            pre = torch.addmm(
                torch.addmm(bias, first, self.in_weight[:n]), second, self.in_weight[n:]
            )
        else:
            pre = torch.addmm(bias, x, self.in_weight)
        h = self.act(pre)
        for weight, b in self.hidden:
            h = self.act(torch.addmm(b, h, weight))
        return h

    def output(self, features: Tensor, columns: slice | None = None) -> Tensor:
        """The output `(B, O)` (or its `columns`) from `features (B, H)`."""
        if columns is None:
            return torch.addmm(self.out_bias, features, self.out_weight)
        return torch.addmm(self.out_bias[columns], features, self.out_weight[:, columns])

    def __call__(
        self, x: Tensor | tuple[Tensor, Tensor], bias: Tensor, columns: slice | None = None
    ) -> Tensor:
        """`output(features(x, bias), columns)`: the whole function at raw `x`."""
        return self.output(self.features(x, bias), columns)


@dataclasses.dataclass(frozen=True)
class StackedMLP:
    """K `FoldedMLP`s of one shape evaluated together, member k on its own rows.

    Every tensor carries a leading member dimension K, and each affine map is one
    `torch.baddbmm` over the K members: at the small batches of planning (tens of rows per
    member) one batched call costs about what one member's call does, so K members cost little
    more than one. Built by `stack`; the same function per member as the `FoldedMLP`s (to
    rounding), valid as long as they are.

    Attributes: as `FoldedMLP`'s, stacked: `in_weight (K, X, H)`, `in_bias (K, 1, H)`,
    `action_weight (K, A, H)` or None, `hidden` `((K, H, H), (K, 1, H))` per further layer,
    `out_weight (K, H, O)`, `out_bias (K, 1, O)`.
    """

    in_weight: Tensor
    in_bias: Tensor
    action_weight: Tensor | None
    hidden: tuple[tuple[Tensor, Tensor], ...]
    out_weight: Tensor
    out_bias: Tensor
    act: Callable[[Tensor], Tensor]

    @staticmethod
    def stack(nets: Sequence[FoldedMLP]) -> StackedMLP:
        """The members `nets` (same widths and activation) as one `StackedMLP`."""

        def both(pick: Callable[[FoldedMLP], Tensor]) -> Tensor:
            return torch.stack([pick(net) for net in nets])

        first = nets[0]
        return StackedMLP(
            in_weight=both(lambda n: n.in_weight),
            in_bias=both(lambda n: n.in_bias).unsqueeze(1),
            action_weight=None
            if first.action_weight is None
            else both(lambda n: cast(Tensor, n.action_weight)),
            hidden=tuple(
                (
                    torch.stack([net.hidden[i][0] for net in nets]),
                    torch.stack([net.hidden[i][1] for net in nets]).unsqueeze(1),
                )
                for i in range(len(first.hidden))
            ),
            out_weight=both(lambda n: n.out_weight),
            out_bias=both(lambda n: n.out_bias).unsqueeze(1),
            act=first.act,
        )

    def input_biases(self, actions: Tensor) -> Tensor:
        """Every step's first-layer action term plus bias, member-major then time-major:
        `(K, T, B, H)` for `actions (K, B, T, A)` (without actions, the bias broadcast)."""
        k, b, t, a = actions.shape
        if self.action_weight is None:
            return self.in_bias.unsqueeze(1).expand(k, t, b, -1)
        flat = actions.transpose(1, 2).reshape(k, t * b, a)
        return torch.baddbmm(self.in_bias, flat, self.action_weight).view(k, t, b, -1)

    def __call__(self, x: Tensor, bias: Tensor) -> Tensor:
        """The output `(K, B, O)` at raw inputs `x (K, B, X)`; `bias (K, B, H)` is one step
        of `input_biases`."""
        h = self.act(torch.baddbmm(bias, x, self.in_weight))
        for weight, b in self.hidden:
            h = self.act(torch.baddbmm(b, h, weight))
        return torch.baddbmm(self.out_bias, h, self.out_weight)


@dataclasses.dataclass(frozen=True)
class AngleInputMLP:
    """A `FoldedMLP` that reads its first `angles` inputs through `(cos, sin)`.

    The wrapped network was folded for the embedded input `[cos q, sin q, rest]` (width
    `X + angles`, the cos/sin features unnormalised); this wrapper embeds raw inputs on the
    way in and otherwise behaves as a `FoldedMLP`: the same `features`, `output`, call and
    action terms. A split input `(q, rest)` keeps its split, as `(cos q | sin q, rest)`.
    """

    net: FoldedMLP
    angles: int

    def embed(self, x: Tensor | tuple[Tensor, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        """`x (B, X)` -> `(B, X + angles)`, or `(q, rest)` -> `([cos q, sin q], rest)`."""
        k = self.angles
        if isinstance(x, tuple):
            q, rest = x
            return torch.cat((q[..., :k].cos(), q[..., :k].sin(), q[..., k:]), dim=-1), rest
        return torch.cat((x[..., :k].cos(), x[..., :k].sin(), x[..., k:]), dim=-1)

    @property
    def in_bias(self) -> Tensor:
        return self.net.in_bias

    def input_bias(self, u: Tensor) -> Tensor:
        return self.net.input_bias(u)

    def input_biases(self, actions: Tensor) -> Tensor:
        return self.net.input_biases(actions)

    def features(self, x: Tensor | tuple[Tensor, Tensor], bias: Tensor) -> Tensor:
        return self.net.features(self.embed(x), bias)

    def output(self, features: Tensor, columns: slice | None = None) -> Tensor:
        return self.net.output(features, columns)

    def __call__(
        self, x: Tensor | tuple[Tensor, Tensor], bias: Tensor, columns: slice | None = None
    ) -> Tensor:
        return self.net(self.embed(x), bias, columns)


FoldedNet = FoldedMLP | AngleInputMLP
"""A folded network, reading its inputs raw or through the angle embedding."""


def embedded_input_stats(mean: Tensor, std: Tensor, angles: int) -> tuple[Tensor, Tensor]:
    """Normalisation statistics `(X + angles,)` of the embedded input `[cos q, sin q, rest]`
    from those of the raw input `(X,)`: the cos/sin features are used as they are."""
    head_mean = mean.new_zeros(2 * angles)
    return torch.cat((head_mean, mean[angles:])), torch.cat((head_mean + 1.0, std[angles:]))
