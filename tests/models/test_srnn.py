"""`srnn`: separable H-NET, leapfrog, time reversibility and symplecticity, recurrent fits."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from physprior.models import make, make_config, model_class

TINY = {"hidden": 16, "layers": 2}
F64 = torch.float64


def _fitted(*, action_dim: int = 0, **config):
    """A tiny float64 SRNN with normalisers far from the identity and random weights."""
    torch.manual_seed(0)
    model = make("srnn", obs_dim=4, action_dim=action_dim, dt=0.1, **TINY, **config).double()
    scale = torch.tensor([1.0, 5.0, 0.5, 2.0], dtype=F64)
    states = torch.cumsum(torch.randn(16, 4, 4, dtype=F64), 1) * scale + 1
    actions = torch.randn(16, 3, action_dim, dtype=F64) * 4 - 1
    model.fit_normalization(states, actions)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator, dtype=F64))
    return model


def _states(batch: int = 5, seed: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 4, generator=generator, dtype=F64) * 0.5 + 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "config",
    [{}, {"substeps": 3}, {"integrator": "euler", "test_integrator": "rk4"}],
    ids=["leapfrog", "leapfrog-substeps", "euler-rk4"],
)
def test_rollout_shapes(shapes_ok, dtype, config):
    shapes_ok("srnn", dtype, **TINY, **config)


def test_bad_inputs_refused(bad_inputs_refused):
    bad_inputs_refused("srnn", **TINY)


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"state_layout": "qv"}, r"srnn needs \[q, p\] data"),
        ({"obs_dim": 5, "q_dim": 2}, "srnn needs as many momenta as positions"),
        ({"activation": "relu"}, "srnn needs a smooth activation"),
        ({"iso_warmup_epochs": -1}, "iso_warmup_epochs must be >= 0"),
        ({"iso_iterations": 0}, "iso_iterations must be >= 1"),
        ({"iso_test_steps": 1}, "iso_test_steps must be >= 2"),
        ({"integrator": "verlet2"}, "unknown integrator 'verlet2'"),
    ],
)
def test_bad_config_refused(config, pattern):
    config = {"obs_dim": 4, "dt": 0.1, **config}
    with pytest.raises(ValueError, match=pattern) as caught:
        make("srnn", **config)
    assert "\n" not in str(caught.value)


def test_defaults_are_the_papers():
    """Spring-chain setup of the SRNN paper: L-L, recurrent, 1 x 2048 tanh, ISO after 100."""
    config = make_config("srnn", obs_dim=40, dt=0.1, action_dim=20)
    assert (config.integrator, config.test_integrator) == ("leapfrog", "leapfrog")
    assert config.train_mode == "recurrent"
    assert (config.hidden, config.layers, config.activation) == (2048, 1, "tanh")
    assert config.iso and config.iso_warmup_epochs == 100 and config.iso_test_steps == 10


def test_energy_is_separable():
    """H(q1, p1) + H(q2, p2) == H(q1, p2) + H(q2, p1) for H = K(p) + V(q)."""
    model = _fitted()
    a, b = _states(seed=3), _states(seed=4)
    swapped_a = torch.cat((a[:, :2], b[:, 2:]), -1)
    swapped_b = torch.cat((b[:, :2], a[:, 2:]), -1)
    torch.testing.assert_close(
        model.energy(a) + model.energy(b),
        model.energy(swapped_a) + model.energy(swapped_b),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("action_dim", [0, 2])
def test_rollout_run_backwards_returns_to_its_start(action_dim):
    """100 leapfrog steps forward, then 100 with -dt (actions replayed in reverse): back to
    the start to 1e-9 in float64. A control force depends on q only, so this holds with it."""
    model = _fitted(action_dim=action_dim).eval()
    z0 = _states(8)
    actions = torch.randn(8, 100, action_dim, dtype=F64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        forward = model.rollout(z0, actions)
        z = forward[:, -1]
        for t in reversed(range(100)):
            z = model.flow(z, actions[:, t], duration=-model.dt)
    assert (forward[:, -1] - z0).abs().max() > 1.0  # it went somewhere
    assert (z - z0).abs().max() < 1e-9


def test_step_is_symplectic():
    """The Jacobian J of one leapfrog step preserves the symplectic form: J^T Omega J = Omega."""
    model = _fitted(substeps=2).eval()
    omega = torch.zeros(4, 4, dtype=F64)
    omega[:2, 2:], omega[2:, :2] = torch.eye(2, dtype=F64), -torch.eye(2, dtype=F64)
    for z in _states(3):
        jacobian = torch.autograd.functional.jacobian(lambda x: model.step(x[None])[0], z)
        torch.testing.assert_close(jacobian.T @ omega @ jacobian, omega, rtol=0, atol=1e-12)
        assert (jacobian - torch.eye(4, dtype=F64)).abs().max() > 1e-3  # not trivially so


def test_initial_states_get_gradients_for_iso(make_windows):
    """ISO fits `initial_states` through the recurrent loss with the network fixed."""
    windows = make_windows(4, 5, n_masses=3)
    torch.manual_seed(0)
    model = make("srnn", **windows.dims(actions=False), **TINY).double().eval()
    model.fit_normalization(windows.states, windows.actions[..., :0])
    z0 = windows.states[:, 0].clone().requires_grad_(True)
    loss = model.training_loss(windows.states, windows.actions[..., :0], initial_states=z0)
    (grad,) = torch.autograd.grad(loss, z0)
    assert grad.abs().min() > 0
    with torch.no_grad():  # an env stepping the model gets plain tensors back
        assert not model.rollout(windows.states[:, 0], steps=3).requires_grad


def test_gradients_reach_every_parameter(make_windows):
    windows = make_windows(8, 4, n_masses=3, actions="random")
    torch.manual_seed(0)
    model = make("srnn", **windows.dims(), **TINY).double()
    model.fit_normalization(windows.states, windows.actions)
    model.training_loss(windows.states, windows.actions).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_state_dict_round_trip_gives_identical_predictions():
    model = _fitted(action_dim=2)
    clone = model_class("srnn")(dataclasses.replace(model.config)).double()
    clone.load_state_dict(model.state_dict())
    z, actions = _states(), torch.randn(5, 4, 2, dtype=F64)
    assert torch.equal(clone.rollout(z, actions), model.rollout(z, actions))


def test_fits_spring_chain_recurrently_ten_times_better_than_no_change(make_windows, fit_model):
    windows = make_windows().float()
    torch.manual_seed(0)
    model = make("srnn", **windows.dims(actions=False), hidden=256)
    assert model.config.train_mode == "recurrent"
    result = fit_model(model, windows, steps=200, lr=2e-2)
    assert result.final < result.no_change / 10, result
    # The trained chain, too, runs back to where it started.
    model = model.double().eval()
    z0 = windows.states[:8, 0]
    with torch.no_grad():
        z = model.rollout(z0, steps=100)[:, -1]
        for _ in range(100):
            z = model.flow(z, duration=-model.dt)
    assert (z - z0).abs().max() < 1e-9
