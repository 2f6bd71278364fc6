"""`rollout_calibration`: honest spreads score the Gaussian fractions, over-confident ones not."""

from __future__ import annotations

import pytest
import torch

from physprior.evaluation import rollout_calibration
from physprior.evaluation.calibration import GAUSSIAN_COVERAGE
from physprior.evaluation.plots import plot_calibration
from physprior.models import make


def _probabilistic_model():
    torch.manual_seed(0)
    model = make("node", obs_dim=2, action_dim=1, dt=0.1, hidden=16, probabilistic=True)
    model = model.double().eval()
    with torch.no_grad():
        model.log_noise.fill_(-2.0)
    return model


def _trajectories_of(model, n: int = 300, horizon: int = 6):
    """True trajectories drawn from `model`'s own Gaussian: it is calibrated by construction."""
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    actions = torch.randn(n, horizon, 1, generator=generator, dtype=torch.float64)
    states = [z]
    with torch.no_grad():
        for t in range(horizon):
            z = model.sample_step(z, actions[:, t], generator=generator)
            states.append(z)
    return torch.stack(states, 1), actions


def test_a_model_scored_on_its_own_samples_covers_the_gaussian_fractions():
    model = _probabilistic_model()
    states, actions = _trajectories_of(model)
    result = rollout_calibration(
        model, states, actions, particles=400, generator=torch.Generator().manual_seed(2)
    )
    assert len(result.nll) == 6 and result.particles == 400
    for one, two in zip(result.within_1sigma, result.within_2sigma, strict=True):
        assert abs(one - GAUSSIAN_COVERAGE[0]) < 0.05 and abs(two - GAUSSIAN_COVERAGE[1]) < 0.03
    # Shrinking the predicted noise makes it over-confident: fewer true states inside.
    with torch.no_grad():
        model.log_noise.sub_(1.5)
    tight = rollout_calibration(model, states, actions, particles=400)
    assert max(tight.within_1sigma) < 0.45 and min(tight.nll) > max(result.nll)


def test_ensembles_spread_their_particles_and_single_deterministic_models_are_refused(tmp_path):
    torch.manual_seed(0)
    ensemble = make("ensemble", member="mlp", size=3, obs_dim=2, action_dim=1, dt=0.1).double()
    states = torch.randn(5, 4, 2, dtype=torch.float64)
    actions = torch.zeros(5, 3, 1, dtype=torch.float64)
    result = rollout_calibration(ensemble, states, actions, particles=6)
    assert result.particles == 6 and len(result.within_2sigma) == 3
    path = plot_calibration({"mlp x3": result}, tmp_path / "calibration.png", dt=0.1)
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="single deterministic model: it predicts no spread"):
        rollout_calibration(make("mlp", obs_dim=2, action_dim=1, dt=0.1), states, actions)
    with pytest.raises(ValueError, match=r"actions have shape \(5, 2, 1\), expected \(5, 3, 1\)"):
        rollout_calibration(ensemble, states, actions[:, :2])
    with pytest.raises(ValueError, match="particles must be an integer >= 2"):
        rollout_calibration(ensemble, states, actions, particles=1)
