"""Is a model's uncertainty honest? Calibration of predicted spreads along held-out rollouts.

A planner that trusts an ensemble's spread (PETS, MBPO) needs that spread to mean what it
says: about 68% of the true states inside one predicted standard deviation of the predicted
mean, 95% inside two. `rollout_calibration` estimates the predictive distribution of an open-loop
rollout by Monte-Carlo particles, as PETS's planner sees it (each particle on one member for
the whole rollout, TS-inf, drawing every step from the member's Gaussian when the members are
probabilistic), fits a Gaussian per step and coordinate to the particles, and scores the true
states against it at every horizon:

- `nll`: Gaussian negative log-likelihood per coordinate, in nats (lower is better; it
  punishes over-confidence and vagueness alike),
- `within_1sigma`, `within_2sigma`: fractions of true coordinates inside one and two predicted
  standard deviations (ideal 0.683 and 0.954; below: over-confident).

A deterministic ensemble's spread is its members' disagreement alone; a single probabilistic
model's is its own noise; a single deterministic model has none and is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from physprior.models import TransitionModel

__all__ = ["GAUSSIAN_COVERAGE", "Calibration", "rollout_calibration"]

#: The fractions of a Gaussian within one and two standard deviations of its mean.
GAUSSIAN_COVERAGE = (math.erf(1 / math.sqrt(2)), math.erf(2 / math.sqrt(2)))
_MIN_VAR = 1e-12  # keeps a collapsed spread (all particles equal) finite


@dataclass(frozen=True)
class Calibration:
    """Per-horizon calibration, each `(H,)` for steps 1..H: `nll` (nats per coordinate),
    `within_1sigma`, `within_2sigma` (fractions), and `particles` used per trajectory."""

    nll: list[float]
    within_1sigma: list[float]
    within_2sigma: list[float]
    particles: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "nll": self.nll,
            "within_1sigma": self.within_1sigma,
            "within_2sigma": self.within_2sigma,
            "particles": self.particles,
        }


@torch.no_grad()
def rollout_calibration(
    model: TransitionModel,
    states: Any,
    actions: Any,
    *,
    particles: int = 20,
    generator: torch.Generator | None = None,
) -> Calibration:
    """Calibration of `model`'s open-loop rollouts against true trajectories `states`
    `(N, H+1, D)` under `actions` `(N, H, A)`, from `particles` particles per trajectory
    (spread evenly over an ensemble's members; a multiple of K is exact). See the module
    docstring. ValueError on shapes that do not fit, too few particles, or a model without
    spread."""
    ensemble = hasattr(model, "members_step")
    probabilistic = model.predicts_variance
    size = int(getattr(model, "size", 1))
    if not ensemble and not probabilistic:
        raise ValueError(
            f"{model.name!r} is a single deterministic model: it predicts no spread to calibrate"
        )
    if isinstance(particles, bool) or not isinstance(particles, int) or particles < 2:
        raise ValueError(f"particles must be an integer >= 2, got {particles!r}")
    true = torch.as_tensor(states).to(model.dtype)
    u = torch.as_tensor(actions).to(model.dtype)
    n = true.shape[0]
    if true.ndim != 3 or true.shape[1] < 2 or true.shape[2] != model.obs_dim:
        raise ValueError(
            f"states have shape {tuple(true.shape)}, expected (N, H+1, {model.obs_dim})"
        )
    horizon = true.shape[1] - 1
    if u.shape != (n, horizon, model.action_dim):
        raise ValueError(
            f"actions have shape {tuple(u.shape)}, expected ({n}, {horizon}, {model.action_dim})"
        )
    model.eval()
    per_member = math.ceil(particles / size)
    # Particles `(K, N * P_k, D)`: member k carries its P_k particles of every trajectory.
    z = true[:, 0].repeat_interleave(per_member, dim=0)
    u_rows = u.repeat_interleave(per_member, dim=0)
    if ensemble:
        z = z.expand(size, *z.shape).clone()
    path = []
    for t in range(horizon):
        if ensemble and probabilistic:
            mean, log_var = model.members_distribution(z, u_rows[:, t])  # type: ignore[operator]
        elif ensemble:
            mean, log_var = model.members_step(z, u_rows[:, t]), None  # type: ignore[operator]
        else:
            mean, log_var = model.step_distribution(z, u_rows[:, t])
        if log_var is not None:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            mean = torch.addcmul(mean, (0.5 * log_var).exp(), noise)
        z = mean
        path.append(z)
    # (H, [K,] N * P_k, D) -> (H, N, K * P_k, D)
    stacked = torch.stack(path)
    if ensemble:
        stacked = stacked.transpose(1, 2)  # (H, N * P_k, K, D)
    cloud = stacked.reshape(horizon, n, -1, model.obs_dim).double()
    mu = cloud.mean(dim=2)
    var = cloud.var(dim=2).clamp_min(_MIN_VAR)
    target = true[:, 1:].transpose(0, 1).double()  # (H, N, D)
    error = target - mu
    nll = 0.5 * (torch.log(2 * math.pi * var) + error.square() / var)
    sd = var.sqrt()
    return Calibration(
        nll=nll.mean(dim=(1, 2)).tolist(),
        within_1sigma=(error.abs() <= sd).double().mean(dim=(1, 2)).tolist(),
        within_2sigma=(error.abs() <= 2 * sd).double().mean(dim=(1, 2)).tolist(),
        particles=per_member * size,
    )
