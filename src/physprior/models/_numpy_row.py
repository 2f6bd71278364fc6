"""Folded networks evaluated on one row in numpy, for environments that step one row at a time.

A single learned env (`gym.make("physprior/Learned-v0")`) asks the model for one transition
per step. In torch every call on a `(1, 128)` tensor costs microseconds of dispatch: a 2 x 128
`mlp` step took 88-100 us here, the same arithmetic in numpy 23-38 us
(`benchmarks/single_env_step.py`), and between torch calls the env's own numpy work (reward,
bound, conversions) ran two to five times slower than alone (measured piece by piece in the
step loop). `NumpyMLP` is a `FoldedMLP`'s weights as numpy arrays in the model's dtype, with
the same activation: the same function to rounding (numpy's BLAS sums in another order than
torch's MKL).

Only the activations below have a numpy form here; a network with another has none
(`NumpyMLP.of` returns None) and its model steps in torch. `NUMPY_UPDATES` holds the
whole-state integrators' steps (`euler`, `rk4`) on one row, for `node`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy.special import expit

from ._normalized_mlp import FoldedMLP

__all__ = ["NUMPY_DTYPES", "NUMPY_UPDATES", "NumpyMLP", "as_row"]

Row = NDArray[Any]


def _softplus(x: Row) -> Row:
    # torch's softplus (beta 1, threshold 20): x itself above 20 (in float64 that differs
    # from log(1 + e^x) by up to 2e-9), log1p(exp(x)) below; the clamp keeps exp finite.
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _relu(x: Row) -> Row:
    return np.maximum(x, 0)


def _silu(x: Row) -> Row:
    return x * expit(x)


def _elu(x: Row) -> Row:
    return np.where(x > 0, x, np.expm1(x))


#: `FoldedMLP.act` (torch) -> the same function on numpy arrays (dtype kept).
_NUMPY_ACTIVATIONS: dict[Any, Callable[[Row], Row]] = {
    torch.sigmoid: expit,  # a folded tanh (see `_normalized_mlp`)
    F.softplus: _softplus,
    torch.relu: _relu,
    F.silu: _silu,
    F.elu: _elu,
}

#: The torch dtypes numpy holds (numpy has no bfloat16 or float16 BLAS worth using).
NUMPY_DTYPES: dict[torch.dtype, type[np.floating[Any]]] = {
    torch.float32: np.float32,
    torch.float64: np.float64,
}


def as_row(x: Any, size: int, name: str, dtype: type[np.floating[Any]]) -> Row:
    """`x` as a `(size,)` array of `dtype` (a copy only where the dtype differs); a
    one-line error naming `name` for anything else."""
    try:
        row = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers, got {x!r}") from None
    if row.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {row.shape}")
    return row


@dataclasses.dataclass(frozen=True)
class NumpyMLP:
    """A `FoldedMLP` on one row in numpy; shapes as there, without the batch dimension.

    Attributes:
        dtype: the numpy dtype of the weights (the model's); inputs are cast to it.
    """

    in_weight: Row  # (X, H)
    in_bias: Row  # (H,)
    action_weight: Row | None  # (A, H)
    hidden: tuple[tuple[Row, Row], ...]  # (W (H, H), b (H,)) each
    out_weight: Row  # (H, O)
    out_bias: Row  # (O,)
    act: Callable[[Row], Row]
    dtype: type[np.floating[Any]]

    @classmethod
    def of(cls, net: FoldedMLP) -> NumpyMLP | None:
        """`net`'s weights copied into numpy, or None where numpy cannot evaluate it (an
        activation without a numpy form here, a dtype numpy lacks, weights off the CPU)."""
        act = _NUMPY_ACTIVATIONS.get(net.act)
        dtype = NUMPY_DTYPES.get(net.in_weight.dtype)
        if act is None or dtype is None or net.in_weight.device.type != "cpu":
            return None

        def array(t: torch.Tensor) -> Row:
            return t.detach().numpy().copy()  # a copy: later in-place training is not seen

        return cls(
            in_weight=array(net.in_weight),
            in_bias=array(net.in_bias),
            action_weight=None if net.action_weight is None else array(net.action_weight),
            hidden=tuple((array(w), array(b)) for w, b in net.hidden),
            out_weight=array(net.out_weight),
            out_bias=array(net.out_bias),
            act=act,
            dtype=dtype,
        )

    def input_bias(self, u: Row) -> Row:
        """The first layer's action term plus bias `(H,)` for `u (A,)` (of `dtype`)."""
        if self.action_weight is None:
            return self.in_bias
        return u @ self.action_weight + self.in_bias

    def __call__(self, x: Row, bias: Row) -> Row:
        """The output `(O,)` at `x (X,)` (of `dtype`), with `bias = input_bias(u)`."""
        h = self.act(x @ self.in_weight + bias)
        for weight, b in self.hidden:
            h = self.act(h @ weight + b)
        return h @ self.out_weight + self.out_bias


# ---------------------------------------------------------------------------------- steps
def _euler_update(f: Callable[[Row], Row], z: Row, h: float) -> Row:
    """`integrators.euler_update` on one numpy row: `z + h f(z)`."""
    return z + h * f(z)


def _rk4_update(f: Callable[[Row], Row], z: Row, h: float) -> Row:
    """`integrators.rk4_update` on one numpy row, the same tableau in the same order."""
    half = 0.5 * h
    k1 = f(z)
    k2 = f(z + half * k1)
    k3 = f(z + half * k2)
    k4 = f(z + h * k3)
    return z + (h / 6.0) * ((k1 + 2.0 * (k2 + k3)) + k4)


#: The library's whole-state integrators by name, on one numpy row (`f`, `z`, `h`) -> `z`;
#: the split ones (leapfrog, symplectic Euler) have no numpy form here.
NUMPY_UPDATES: dict[str, Callable[[Callable[[Row], Row], Row, float], Row]] = {
    "euler": _euler_update,
    "rk4": _rk4_update,
}
