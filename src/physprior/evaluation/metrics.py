"""Rollout metrics of PROTOCOLS.md, on batches of predicted and true trajectories.

All functions take `predicted` and `true` of shape `(B, T + 1, D)` whose first state is the
shared initial state (it is excluded where it would make a logarithm infinite) and return one
value per trajectory, `(B,)`, unless stated otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-12


def relative_error(predicted: Tensor, true: Tensor) -> Tensor:
    """`e(t) = |z_hat(t) - z(t)| / (|z_hat(t)| + |z(t)|)` per time step, `(B, T + 1)`."""
    _check_pair(predicted, true)
    num = torch.linalg.vector_norm(predicted - true, dim=-1)
    den = torch.linalg.vector_norm(predicted, dim=-1) + torch.linalg.vector_norm(true, dim=-1)
    return num / den.clamp_min(_TINY)


def geometric_mean_over_time(values: Tensor) -> Tensor:
    """`exp(mean_t log v(t))` over steps `t >= 1` of `values` `(B, T + 1)` -> `(B,)`."""
    return values[:, 1:].clamp_min(_TINY).log().mean(dim=1).exp()


def rollout_error(predicted: Tensor, true: Tensor) -> Tensor:
    """decon-hnn's rollout error: the geometric mean over time of the relative state error."""
    return geometric_mean_over_time(relative_error(predicted, true))


def position_error(predicted: Tensor, true: Tensor, q_dim: int, steps: int | None = None) -> Tensor:
    """SRNN's error: L2 distance of all positions as one vector, averaged over steps 1..steps."""
    _check_pair(predicted, true)
    dist = torch.linalg.vector_norm(predicted[..., :q_dim] - true[..., :q_dim], dim=-1)
    last = dist.shape[1] if steps is None else steps + 1
    return dist[:, 1:last].mean(dim=1)


def energy_violation(predicted_energy: Tensor, true_energy: Tensor) -> Tensor:
    """`|H(z_hat) - H(z)| / (|H(z_hat)| + |H(z)|)` per step `(B, T + 1)`, true `H` on both."""
    den = predicted_energy.abs() + true_energy.abs()
    return (predicted_energy - true_energy).abs() / den.clamp_min(_TINY)


def energy_mse(predicted_energy: Tensor, true_energy: Tensor) -> Tensor:
    """HNN's energy MSE: mean over time of the squared gap of the true energy, `(B,)`."""
    return (predicted_energy - true_energy).square()[:, 1:].mean(dim=1)


def _check_pair(predicted: Tensor, true: Tensor) -> None:
    if predicted.shape != true.shape or predicted.ndim != 3:
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and true {tuple(true.shape)} trajectories "
            "must both be (B, T + 1, D)"
        )
