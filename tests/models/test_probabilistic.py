"""`probabilistic=True`: PETS's Gaussian head on `mlp`, a learned noise scale on the others."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make
from physprior.training import load_model, save_model

DT = 0.1
NOISE = 0.05  # std of the noise on every state change of the data below


def _noisy_linear_windows(n: int = 2000, seed: int = 0):
    """One-step windows of `z' = z + dt * (A z + B u) + noise`, `z (2,)`, `u (1,)`."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    u = torch.randn(n, 1, generator=generator, dtype=torch.float64)
    noise = NOISE * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    z_next = z + DT * (z @ a.T + u @ b.T) + noise
    return torch.stack((z, z_next), 1), u[:, None]


def _fit(model, states, actions, steps: int = 400, lr: float = 1e-2):
    model.fit_normalization(states, actions)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        model.training_loss(states, actions).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize("name", ["mlp", "node", "node-so", "hnn"])
def test_the_likelihood_learns_the_datas_noise_level(name):
    states, actions = _noisy_linear_windows(800)
    torch.manual_seed(0)
    # One-step training, one integrator step (speed: the noise level is what is tested).
    extra = {"train_mode": "single", "substeps": 1} if name != "mlp" else {}
    model = make(name, obs_dim=2, action_dim=1, dt=DT, hidden=32, probabilistic=True, **extra)
    model = _fit(model.double(), states, actions, steps=300)
    with torch.no_grad():
        mean, log_var = model.step_distribution(states[:500, 0], actions[:500, 0])
        step = model.step(states[:500, 0], actions[:500, 0])
    std = (0.5 * log_var).exp()
    assert std.shape == (500, 2)
    # The predicted spread is the noise's, within 25%, and the mean is the step.
    assert float((std.mean() - NOISE).abs()) < 0.25 * NOISE, float(std.mean())
    torch.testing.assert_close(mean, step)


def test_mlp_log_variance_stays_within_its_learned_bounds():
    torch.manual_seed(0)
    model = make("mlp", obs_dim=2, action_dim=1, dt=DT, hidden=16, probabilistic=True).double()
    last = model.net.linears[-1]
    with torch.no_grad():
        for extreme in (1e4, -1e4):
            last.bias[2:] = extreme
            _, log_var = model.step_distribution(torch.zeros(3, 2), torch.zeros(3, 1))
            normalised = log_var - 2.0 * model.delta_norm.std.log()
            # Soft bounds: exceeded by at most softplus(-(max - min)) ~ 3e-5.
            assert bool((normalised <= model.max_log_var + 1e-4).all())
            assert bool((normalised >= model.min_log_var - 1e-4).all())
    # PETS's penalty on the bounds is in the loss.
    states, actions = _noisy_linear_windows(50)
    loss = model.training_loss(states, actions)
    penalty = 0.01 * (model.max_log_var.sum() - model.min_log_var.sum())
    assert float(penalty.detach()) == pytest.approx(0.01 * 2 * (0.5 + 10.0))
    assert torch.isfinite(loss)


def test_samples_follow_the_predicted_gaussian():
    torch.manual_seed(0)
    model = make("node-so", obs_dim=2, action_dim=1, dt=DT, hidden=16, probabilistic=True)
    model = model.double()
    with torch.no_grad():
        model.log_noise.fill_(-1.0)
    z = torch.zeros(20000, 2, dtype=torch.float64) + torch.tensor([0.3, -0.2])
    generator = torch.Generator().manual_seed(1)
    samples = model.sample_step(z, torch.zeros(20000, 1), generator=generator)
    mean, log_var = model.step_distribution(z[:1], torch.zeros(1, 1))
    torch.testing.assert_close(samples.mean(0), mean[0], atol=0.01, rtol=0)
    torch.testing.assert_close(samples.std(0), (0.5 * log_var[0]).exp(), atol=0, rtol=0.03)


def test_ensemble_members_distributions_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    ensemble = make(
        "ensemble", member="mlp", size=3, obs_dim=2, action_dim=1, dt=DT,
        member_config={"hidden": 16, "probabilistic": True},
    ).double()  # fmt: skip
    z, u = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64)
    with torch.no_grad():
        mean, log_var = ensemble.members_distribution(z, u)
        for k, member in enumerate(ensemble.members):
            own_mean, own_log_var = member.step_distribution(z, u)
            torch.testing.assert_close(mean[k], own_mean, rtol=0, atol=1e-12)
            torch.testing.assert_close(log_var[k], own_log_var, rtol=0, atol=1e-12)
    save_model(ensemble, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    with torch.no_grad():
        assert torch.equal(loaded.members_distribution(z, u)[1], log_var)


def test_what_cannot_be_probabilistic_is_refused():
    with pytest.raises(ValueError, match="probabilistic=True is for the memoryless state models"):
        make("lstm", obs_dim=2, dt=DT, probabilistic=True)
    with pytest.raises(ValueError, match="probabilistic is a member's field"):
        make("ensemble", member="mlp", obs_dim=2, dt=DT, probabilistic=True)
    plain = make("mlp", obs_dim=2, dt=DT)
    with pytest.raises(ValueError, match="built with probabilistic=False"):
        plain.step_distribution(torch.zeros(1, 2))
    deterministic = make("ensemble", member="mlp", obs_dim=2, dt=DT)
    with pytest.raises(ValueError, match="members were built with probabilistic=False"):
        deterministic.members_distribution(torch.zeros(1, 2))
    model = make("mlp", obs_dim=2, action_dim=1, dt=DT, probabilistic=True)
    states, actions = _noisy_linear_windows(8)
    with pytest.raises(ValueError, match="loss must be 'l2', got 'l1'"):
        model.training_loss(states.float(), actions.float(), loss="l1")
