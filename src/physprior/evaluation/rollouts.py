"""Compare a model's open-loop rollouts with true trajectories and summarise the metrics."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from physprior.models import TransitionModel

from . import metrics

EnergyFn = Callable[[Tensor], Tensor]
"""The true Hamiltonian of a batch of states `(..., D) -> (...)` (e.g. `env.unwrapped.energy`)."""

InitialStateFit = Callable[[TransitionModel, Tensor, Tensor], Tensor]
"""Fits `z0 (B, D)` to observed states `(B, K, D)` and the actions `(B, K - 1, A)` between."""


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation of one metric over test trajectories."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: Tensor) -> Summary:
        values = values.double()
        std = values.std(unbiased=False).item() if values.numel() > 1 else 0.0
        return cls(mean=values.mean().item(), std=std)


@dataclass(frozen=True)
class EvalResult:
    """Metrics of open-loop rollouts over `n_trajectories` windows of `horizon` steps.

    `rollout_error` is decon-hnn's geometric-mean relative state error, `position_error`
    SRNN's L2 position error averaged over the horizon, `energy_violation` the geometric mean
    over time of the relative true-energy gap and `energy_mse` HNN's energy MSE (the last two
    only where the system has a true energy). `error_curve[t]` is the mean relative state
    error `t` steps after the initial state.
    """

    horizon: int
    n_trajectories: int
    metrics: dict[str, Summary]
    error_curve: list[float] = field(default_factory=list)
    observed_steps: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict(
    model: TransitionModel,
    states: Tensor,
    actions: Tensor,
    *,
    observed_steps: int = 1,
    fit_initial_state: InitialStateFit | None = None,
) -> Tensor:
    """The model's rollout `(B, T + 1, D)` along the true windows `states (B, T + 1, D)`.

    With `observed_steps = K > 1` the initial state is first fitted to the first `K`
    observed states (`fit_initial_state`, e.g. SRNN's test-time initial-state optimisation)
    and the rollout starts from the fitted state.
    """
    model.eval()
    states = states.to(model.dtype)
    actions = actions.to(model.dtype)
    z0 = states[:, 0]
    if observed_steps > 1:
        if fit_initial_state is None:
            raise ValueError("observed_steps > 1 needs a fit_initial_state function")
        z0 = fit_initial_state(
            model, states[:, :observed_steps], actions[:, : observed_steps - 1]
        ).detach()
    with torch.no_grad():
        return model.rollout(z0, actions)


def evaluate(
    model: TransitionModel,
    states: Tensor,
    actions: Tensor,
    *,
    energy: EnergyFn | None = None,
    observed_steps: int = 1,
    fit_initial_state: InitialStateFit | None = None,
) -> EvalResult:
    """Roll the model out along `states (B, T + 1, D)` with `actions (B, T, A)` and score it.

    With `observed_steps = K`, the first `K - 1` steps are the observed prefix that the
    initial state was fitted to; metrics cover the `T - K + 1` predicted steps after it.
    """
    if states.ndim != 3 or states.shape[1] < 2:
        raise ValueError(f"states must be (B, T + 1, D) with T >= 1, got {tuple(states.shape)}")
    if not 1 <= observed_steps < states.shape[1]:
        raise ValueError(
            f"observed_steps must be in [1, {states.shape[1] - 1}], got {observed_steps}"
        )
    predicted = predict(
        model, states, actions, observed_steps=observed_steps, fit_initial_state=fit_initial_state
    )
    true = states.to(predicted.dtype)
    # Score from the last observed state on.
    predicted, true = predicted[:, observed_steps - 1 :], true[:, observed_steps - 1 :]
    values = {
        "rollout_error": metrics.rollout_error(predicted, true),
        "position_error": metrics.position_error(predicted, true, model.q_dim),
    }
    if energy is not None:
        e_pred, e_true = energy(predicted), energy(true)
        values["energy_violation"] = metrics.geometric_mean_over_time(
            metrics.energy_violation(e_pred, e_true)
        )
        values["energy_mse"] = metrics.energy_mse(e_pred, e_true)
    curve = metrics.relative_error(predicted, true).mean(dim=0)
    return EvalResult(
        horizon=int(true.shape[1] - 1),
        n_trajectories=int(true.shape[0]),
        metrics={k: Summary.of(v) for k, v in values.items()},
        error_curve=[float(x) if math.isfinite(float(x)) else math.inf for x in curve],
        observed_steps=observed_steps,
    )
