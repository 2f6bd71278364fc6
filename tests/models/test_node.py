"""`node`: the MLP vector field, its integrators, and the folded network it runs on."""

from __future__ import annotations

import pytest
import torch

from physprior.integrators import get_integrator
from physprior.models import make
from physprior.models._normalized_mlp import NormalizedMLP

TINY = {"hidden": 16, "layers": 2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("integrator", ["euler", "rk4", "leapfrog", "symplectic_euler"])
def test_rollout_shapes(shapes_ok, dtype, integrator):
    shapes_ok("node", dtype, integrator=integrator, substeps=2, **TINY)


def test_fits_spring_chain_ten_times_better_than_no_change(make_windows, fit_model):
    windows = make_windows().float()
    torch.manual_seed(0)
    model = make("node", **windows.dims(actions=False), hidden=64, integrator="euler")
    result = fit_model(model, windows, steps=300, lr=3e-3)
    assert result.final < result.no_change / 10, result


def test_learns_the_action_as_an_input(make_windows, fit_model):
    """Under strong random forces a model that sees the action fits far better than one blind."""
    windows = make_windows(actions="random", force_scale=50.0).float()
    losses = []
    for sees_action in (True, False):
        torch.manual_seed(0)
        model = make("node", **windows.dims(actions=sees_action), hidden=32, integrator="euler")
        losses.append(fit_model(model, windows, steps=200, lr=5e-3).final)
    assert losses[0] < losses[1] / 2, losses


def _fitted(**config):
    """A tiny model whose normalisers are far from the identity (so folding is exercised)."""
    torch.manual_seed(0)
    model = make("node", obs_dim=4, action_dim=2, dt=0.1, **TINY, **config).double()
    states = torch.randn(8, 3, 4, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.2, 3.0]) + 2
    actions = torch.randn(8, 2, 2, dtype=torch.float64) * 4 - 1
    model.fit_normalization(states, actions)
    return model


@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu", "silu", "elu"])
def test_vector_field_is_the_documented_formula(activation):
    model = _fitted(activation=activation)
    z, u = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    raw = model.net(model.state_norm(z), model.action_norm(u))
    expected = model.delta_norm.inverse(raw) / model.dt
    torch.testing.assert_close(model.vector_field(z, u), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["euler", "rk4", "leapfrog", "symplectic_euler"])
def test_step_integrates_the_vector_field(name):
    model = _fitted(integrator=name, substeps=3)
    z, u = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    integrator = get_integrator(name)
    if integrator.requires_split:
        from physprior.integrators import SplitField

        def rate(part):
            return lambda q, p: model.vector_field(torch.cat((q, p), -1), u)[:, part]

        field = SplitField(rate(slice(None, 2)), rate(slice(2, None)))
    else:
        field = lambda state: model.vector_field(state, u)  # noqa: E731
    expected = integrator.advance(field, z, model.dt / 3, 3)
    torch.testing.assert_close(model.step(z, u), expected, rtol=1e-12, atol=1e-12)


def test_train_and_eval_modes_use_their_own_integrators():
    """E-L: Euler while training, leapfrog in evaluation (the SRNN paper's labels)."""
    model = _fitted(integrator="euler", test_integrator="leapfrog")
    z0 = torch.randn(3, 4, dtype=torch.float64)
    actions = torch.randn(3, 2, 2, dtype=torch.float64)
    model.train()
    assert model.active_integrator.name == "euler"
    trained = model.rollout(z0, actions)
    euler = _fitted(integrator="euler").rollout(z0, actions)
    model.eval()
    assert model.active_integrator.name == "leapfrog"
    tested = model.rollout(z0, actions)
    leapfrog = _fitted(integrator="leapfrog").rollout(z0, actions)
    torch.testing.assert_close(trained, euler, rtol=0, atol=0)
    torch.testing.assert_close(tested, leapfrog, rtol=0, atol=0)
    assert (trained - tested).abs().max() > 1e-6


def test_rollout_matches_repeated_steps():
    model = _fitted(integrator="rk4", substeps=2)
    z0 = torch.randn(3, 4, dtype=torch.float64)
    actions = torch.randn(3, 4, 2, dtype=torch.float64)
    states = model.rollout(z0, actions)
    z = z0
    for t in range(4):
        z = model.step(z, actions[:, t])
        torch.testing.assert_close(states[:, t + 1], z, rtol=1e-13, atol=1e-13)


def test_gradients_reach_every_parameter(make_windows):
    windows = make_windows(8, 3, actions="random")
    torch.manual_seed(0)
    model = make("node", **windows.dims(), **TINY).double()
    model.fit_normalization(windows.states, windows.actions)
    model.training_loss(windows.states, windows.actions).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_bad_inputs_refused(bad_inputs_refused):
    bad_inputs_refused("node", **TINY)


def test_split_integrators_need_equal_halves():
    with pytest.raises(ValueError, match="integrator 'leapfrog' splits the state"):
        make("node", obs_dim=5, dt=0.1, q_dim=2, integrator="euler", test_integrator="leapfrog")
    make("node", obs_dim=5, dt=0.1, q_dim=2, integrator="rk4")  # plain integrators do not care


def test_folded_network_without_hidden_layers_is_refused():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        NormalizedMLP(3, 1, 3, hidden=8, layers=0, activation="tanh")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        NormalizedMLP(3, 1, 3, hidden=8, layers=1, activation="gelu")
