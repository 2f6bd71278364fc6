"""`vin`: the variational integrator schemes' structure (symplectic, reversible, bounded
energy, SO(2) steps under pi/2) and their equivalences."""

from __future__ import annotations

import math

import pytest
import torch

from physprior.models import make
from physprior.models.vin import SO2_CLIP

DT = 0.1


def _vin(scheme: str = "vv", n: int = 1, **config) -> torch.nn.Module:
    torch.manual_seed(0)
    options = {"hidden": 32} | config
    return make("vin", obs_dim=2 * n, dt=DT, scheme=scheme, **options).double().eval()


def _quadratic(model, stiffness: float = 2.0) -> None:
    """Replace the learned potential by `U = stiffness |q|^2 / 2` (a spring, m = 1)."""
    model.potential_gradient = lambda q: stiffness * q
    model.potential = lambda q: 0.5 * stiffness * q.square().sum(-1)


def test_vv_step_is_symplectic() -> None:
    model = _vin("vv", n=2)
    z = torch.randn(5, 4, dtype=torch.float64)
    omega = torch.zeros(4, 4, dtype=torch.float64)
    omega[:2, 2:], omega[2:, :2] = torch.eye(2), -torch.eye(2)
    for sample in z:
        jac = torch.autograd.functional.jacobian(lambda x: model.step(x[None])[0], sample)
        assert torch.allclose(jac.T @ omega @ jac, omega, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scheme", ["vv", "sv"])
def test_step_is_time_reversible(scheme: str) -> None:
    model = _vin(scheme, n=2)
    z = torch.randn(8, 4, dtype=torch.float64)
    flip = torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    back = model.step(model.step(z) * flip) * flip
    assert torch.allclose(back, z, rtol=0, atol=1e-12)


def test_vv_energy_error_stays_bounded_over_ten_thousand_steps() -> None:
    model = _vin("vv")
    _quadratic(model)
    z0 = torch.tensor([[1.2, 0.3]], dtype=torch.float64)
    with torch.no_grad():
        path = model.rollout(z0, steps=10_000)[0]
    energy = 0.5 * path[:, 1] ** 2 + path[:, 0] ** 2  # k = 2
    error = (energy - energy[0]).abs() / energy[0]
    # Leapfrog's energy error is O(h^2) and oscillates; it does not grow.
    assert error.max() < 0.02
    assert error[-1000:].max() < 1.5 * error[:1000].max()


def test_vv_learned_energy_stays_bounded_too() -> None:
    model = _vin("vv")
    z0 = torch.tensor([[0.5, 0.2]], dtype=torch.float64)
    with torch.no_grad():
        path = model.rollout(z0, steps=10_000)[0]
        energy = model.energy(path)
    spread = (energy - energy[0]).abs()
    assert spread[-1000:].max() < 1.5 * spread[:1000].max() + 1e-12


def test_sv_is_vv_on_observed_velocities() -> None:
    vv, sv = _vin("vv", n=2), _vin("sv", n=2)
    sv.load_state_dict(vv.state_dict())
    z0 = torch.randn(6, 4, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(sv.rollout(z0, steps=50), vv.rollout(z0, steps=50), atol=1e-9)


def test_sv_with_a_spring_oscillates_with_the_papers_sign() -> None:
    """`q_{t+1} = 2 q_t - q_{t-1} - h^2 grad U`: with the spring's `U` the motion stays
    bounded; the opposite sign would grow like exp(sqrt(k) t)."""
    model = _vin("sv")
    _quadratic(model)
    with torch.no_grad():
        path = model.rollout(torch.tensor([[1.0, 0.0]], dtype=torch.float64), steps=2_000)
    q = path[0, :, 0]
    assert q.abs().max() < 1.01
    # A quarter period of the true spring (omega = sqrt(2)) later, q has crossed zero.
    quarter = round(math.pi / (2 * math.sqrt(2.0)) / DT)
    assert q[quarter + 1] < 0 < q[quarter - 1]


def test_so2_never_turns_an_angle_by_pi_over_2() -> None:
    model = _vin("so2", n=2)
    with torch.no_grad():
        for layer in model.potential_net:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(50.0)
        z0 = torch.cat((torch.randn(16, 2), 100.0 * torch.randn(16, 2)), -1).double()
        path = model.rollout(z0, steps=20)
    turns = (path[:, 1:, :2] - path[:, :-1, :2]).abs()
    assert turns.max() <= math.asin(1.0 - SO2_CLIP) + 1e-12 < math.pi / 2
    assert turns.max() > 1.0  # the clip was reached


@pytest.mark.parametrize("scheme", ["vv", "sv", "so2"])
def test_every_parameter_trains(scheme: str) -> None:
    torch.manual_seed(0)
    model = make("vin", obs_dim=2, action_dim=1, dt=DT, scheme=scheme, hidden=8).double()
    states = torch.randn(4, 6, 2, dtype=torch.float64)
    actions = torch.randn(4, 5, 1, dtype=torch.float64)
    model.fit_normalization(states, actions)
    model.training_loss(states, actions).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"scheme": "rk4"}, "scheme must be one of vv, sv, so2"),
        ({"integrator": "rk4"}, "vin's integrator is fixed by its scheme"),
        ({"substeps": 2}, "vin's substeps is fixed"),
        ({"activation": "relu"}, "smooth activation"),
        ({"obs_dim": 3, "q_dim": 1}, "as many velocities as positions"),
    ],
)
def test_bad_configs_are_refused(config: dict, message: str) -> None:
    options = {"obs_dim": 2, "dt": DT} | config
    with pytest.raises(ValueError, match=message):
        make("vin", **options)


@pytest.mark.parametrize("scheme", ["vv", "so2"])
def test_in_the_learned_env_on_the_pendulum(tmp_path, scheme: str) -> None:
    import gymnasium as gym
    import numpy as np

    from physprior.training import save_model

    base = "physprior/Pendulum-v0"
    dt = gym.make(base).unwrapped.dt
    model = make("vin", obs_dim=2, action_dim=1, dt=dt, env_id=base, scheme=scheme, hidden=8)
    save_model(model, tmp_path / "model")
    env = gym.make("physprior/Learned-v0", model_path=tmp_path / "model", base_env_id=base)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, reward, *_ = env.step(env.action_space.sample())
    assert obs.shape == (2,) and np.isfinite(obs).all() and np.isfinite(reward)


def test_the_command_line_trains_it(tmp_path) -> None:
    from physprior.cli import main

    data, run = str(tmp_path / "p.npz"), str(tmp_path / "run")
    args = ["--trajectories", "8", "--length", "8", "--out", data, "--no-progress"]
    assert main(["generate", "physprior/Pendulum-v0", *args]) == 0
    train = ["train", data, "--model", "vin", "--epochs", "2", "--window", "4", "--out", run]
    assert main([*train, "--set", "scheme=so2", "--set", "hidden=16", "--no-progress"]) == 0
    assert main(["eval", run, data, "--horizon", "4", "--json", str(tmp_path / "e.json")]) == 0


@pytest.mark.parametrize("scheme", ["vv", "so2"])
def test_the_force_is_the_gradient_of_the_potential_in_data_units(scheme: str) -> None:
    model = _vin(scheme, n=2)
    states = torch.randn(8, 5, 4, dtype=torch.float64) * torch.tensor([2.0, 0.5, 3.0, 1.0])
    model.fit_normalization(states, torch.zeros(8, 4, 0, dtype=torch.float64))
    assert model.scales.energy_scale != 1.0  # the fitted units are in play
    q = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(model.potential(q).sum(), q)
    torch.testing.assert_close(model.potential_gradient(q), expected, rtol=1e-10, atol=1e-12)
