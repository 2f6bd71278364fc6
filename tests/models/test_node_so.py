"""`node-so`: second-order structure on [q, v] and [q, p] data."""

from __future__ import annotations

import pytest
import torch

from physprior.integrators import SplitField, get_integrator
from physprior.models import make, make_config

TINY = {"hidden": 16, "layers": 2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "config",
    [
        {"state_layout": "qv"},
        {"state_layout": "qv", "integrator": "rk4", "test_integrator": "leapfrog"},
        {"state_layout": "qp", "substeps": 2},
        {"state_layout": "qp", "integrator": "euler", "test_integrator": "leapfrog"},
    ],
    ids=["qv-euler", "qv-rk4-leapfrog", "qp-rk4", "qp-euler-leapfrog"],
)
def test_rollout_shapes(shapes_ok, dtype, config):
    shapes_ok("node-so", dtype, **TINY, **config)


@pytest.mark.parametrize("layout", ["qv", "qp"])
def test_fits_spring_chain_ten_times_better_than_no_change(make_windows, fit_model, layout):
    windows = make_windows(layout=layout).float()
    torch.manual_seed(0)
    # Defaults apart from size: qv integrates with the 8-substep averaged-velocity rule, qp
    # with one RK4 step (8 would only cost time here).
    if layout == "qv":
        model = make("node-so", **windows.dims(actions=False), hidden=32)
        result = fit_model(model, windows, steps=150, lr=5e-3)
    else:
        model = make("node-so", **windows.dims(actions=False), hidden=32, substeps=1)
        result = fit_model(model, windows, steps=100, lr=1e-2)
    assert result.final < result.no_change / 10, result


def test_learns_the_action_as_an_input(make_windows, fit_model):
    windows = make_windows(actions="random", force_scale=50.0, layout="qv").float()
    losses = []
    for sees_action in (True, False):
        torch.manual_seed(0)
        model = make("node-so", **windows.dims(actions=sees_action), hidden=32, substeps=2)
        losses.append(fit_model(model, windows, steps=150, lr=5e-3).final)
    assert losses[0] < losses[1] / 2, losses


def _fitted(layout: str, **config):
    """A tiny float64 model whose normalisers are far from the identity."""
    torch.manual_seed(0)
    model = make(
        "node-so", obs_dim=6, action_dim=2, state_layout=layout, dt=0.1, **TINY, **config
    ).double()
    scale = torch.tensor([1.0, 5.0, 0.2, 3.0, 0.5, 2.0], dtype=torch.float64)
    states = torch.cumsum(torch.randn(16, 4, 6, dtype=torch.float64), 1) * scale + 1
    actions = torch.randn(16, 3, 2, dtype=torch.float64) * 4 - 1
    model.fit_normalization(states, actions)
    return model


def test_config_resolves_auto_integrator_by_layout():
    assert make_config("node-so", obs_dim=4, dt=0.1, state_layout="qv").integrator == "euler"
    assert make_config("node-so", obs_dim=4, dt=0.1, state_layout="qp").integrator == "rk4"
    assert make_config("node-so", obs_dim=4, dt=0.1).substeps == 8
    config = make_config("node-so", obs_dim=4, dt=0.1, state_layout="qv", integrator="leapfrog")
    assert config.integrator == "leapfrog"


def _plain_acceleration(model, z, u):
    """The documented acceleration with the plain (unfolded) network."""
    n, dt = model.q_dim, model.dt
    raw = model.net(model.state_norm(z), model.action_norm(u))
    return (model.delta_norm.mean[n:] + model.delta_norm.std[n:] * raw) / dt


def _hand_rollout(model, z0, actions):
    """decon-hnn appendix C by hand: per substep a = f(q, v, u), q += h v + h^2 a / 2, v += h a."""
    n, substeps = model.q_dim, model.config.substeps
    h = model.dt / substeps
    q, v = z0[:, :n], z0[:, n:]
    states = [z0]
    for t in range(actions.shape[1]):
        for _ in range(substeps):
            a = _plain_acceleration(model, torch.cat((q, v), -1), actions[:, t])
            q, v = q + h * v + h * h / 2 * a, v + h * a
        states.append(torch.cat((q, v), -1))
    return torch.stack(states, 1)


def test_qv_euler_is_the_averaged_velocity_rule():
    model = _fitted("qv")
    assert model.config.integrator == "euler" and model.config.substeps == 8
    z0 = torch.randn(4, 6, dtype=torch.float64)
    actions = torch.randn(4, 3, 2, dtype=torch.float64)
    expected = _hand_rollout(model, z0, actions)
    torch.testing.assert_close(model.rollout(z0, actions), expected, rtol=1e-12, atol=1e-12)
    model.eval()
    torch.testing.assert_close(model.rollout(z0, actions), expected, rtol=1e-12, atol=1e-12)
    single = model.step(z0, actions[:, 0])
    torch.testing.assert_close(single, expected[:, 1], rtol=1e-12, atol=1e-12)


def test_qv_acceleration_is_the_documented_formula():
    model = _fitted("qv")
    z, u = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    expected = _plain_acceleration(model, z, u)
    torch.testing.assert_close(model.acceleration(z, u), expected, rtol=1e-12, atol=1e-12)


def test_qv_other_integrators_integrate_the_second_order_field():
    model = _fitted("qv", integrator="rk4", test_integrator="leapfrog", substeps=2)
    z, u = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    field = SplitField.from_second_order(lambda q, v: model.acceleration(torch.cat((q, v), -1), u))
    for mode, name in ((model.train, "rk4"), (model.eval, "leapfrog")):
        mode()
        expected = get_integrator(name).advance(field, z, model.dt / 2, 2)
        torch.testing.assert_close(model.step(z, u), expected, rtol=1e-12, atol=1e-12)


def test_qp_mass_matrix_is_symmetric_positive_definite():
    model = _fitted("qp")
    q = torch.randn(64, 3, dtype=torch.float64) * 10  # far outside the data, too
    inverse = model.inverse_mass_matrix(q)
    mass = model.mass_matrix(q)
    assert inverse.shape == mass.shape == (64, 3, 3)
    torch.testing.assert_close(inverse, inverse.transpose(-1, -2), rtol=0, atol=0)
    torch.testing.assert_close(mass, mass.transpose(-1, -2), rtol=1e-10, atol=1e-10)
    assert (torch.linalg.eigvalsh(inverse) > 0).all()
    assert (torch.linalg.eigvalsh(mass) > 0).all()
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(mass @ inverse, eye, rtol=1e-8, atol=1e-8)


def test_qp_field_is_inverse_mass_times_momentum_and_learned_force():
    """One Euler step: q += dt M^-1(q) p, p += dt f(q, p, u)."""
    model = _fitted("qp", integrator="euler", substeps=1)
    z, u = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    q, p = z[:, :3], z[:, 3:]
    velocity = (model.inverse_mass_matrix(q) @ p.unsqueeze(-1)).squeeze(-1)
    expected = torch.cat((q + model.dt * velocity, p + model.dt * model.acceleration(z, u)), -1)
    torch.testing.assert_close(model.step(z, u), expected, rtol=1e-12, atol=1e-12)


def test_train_and_eval_modes_use_their_own_integrators():
    model = _fitted("qp", integrator="euler", test_integrator="rk4", substeps=1)
    z0 = torch.randn(3, 6, dtype=torch.float64)
    actions = torch.randn(3, 2, 2, dtype=torch.float64)
    trained = model.train().rollout(z0, actions)
    tested = model.eval().rollout(z0, actions)
    torch.testing.assert_close(
        trained, _fitted("qp", integrator="euler", substeps=1).rollout(z0, actions)
    )
    torch.testing.assert_close(
        tested, _fitted("qp", integrator="rk4", substeps=1).rollout(z0, actions)
    )
    assert (trained - tested).abs().max() > 1e-6


@pytest.mark.parametrize("layout", ["qv", "qp"])
def test_gradients_reach_every_parameter(layout):
    model = _fitted(layout, substeps=2)
    states = torch.randn(4, 3, 6, dtype=torch.float64)
    actions = torch.randn(4, 2, 2, dtype=torch.float64)
    model.training_loss(states, actions).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_gradients_match_finite_differences():
    """The folded fast path is differentiated correctly (float64 gradcheck on a tiny model)."""
    torch.manual_seed(0)
    model = make(
        "node-so", obs_dim=4, dt=0.1, action_dim=1, state_layout="qv", hidden=4, substeps=3
    )
    model = model.double()
    z0 = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    actions = torch.randn(2, 2, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, a: model.rollout(z, a), (z0, actions))


@pytest.mark.parametrize("activation", ["tanh", "softplus", "relu", "silu", "elu"])
@pytest.mark.parametrize(("layers", "action_dim"), [(1, 0), (2, 2), (3, 1)])
def test_folded_rollout_matches_the_plain_network(activation, layers, action_dim):
    """The folded fast path gives the plain network's states and gradients, any activation."""
    torch.manual_seed(0)
    model = make(
        "node-so",
        obs_dim=6,
        dt=0.1,
        action_dim=action_dim,
        state_layout="qv",
        hidden=8,
        layers=layers,
        activation=activation,
        substeps=3,
    ).double()
    states = torch.cumsum(torch.randn(16, 4, 6, dtype=torch.float64), 1) * 2 + 1
    model.fit_normalization(states, torch.randn(16, 3, action_dim, dtype=torch.float64) * 3)
    z0 = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    actions = torch.randn(5, 4, action_dim, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(5, 5, 6, dtype=torch.float64)
    inputs = [z0, *([actions] if action_dim else []), *model.parameters()]
    fast_states, slow_states = model.rollout(z0, actions), _hand_rollout(model, z0, actions)
    torch.testing.assert_close(fast_states, slow_states, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the inference path (preallocated buffers, no graph)
        torch.testing.assert_close(model.rollout(z0, actions), slow_states, rtol=1e-12, atol=1e-12)
    fast = torch.autograd.grad((fast_states * weights).sum(), inputs)
    slow = torch.autograd.grad((slow_states * weights).sum(), inputs)
    for got, expected in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_bad_inputs_refused(bad_inputs_refused):
    bad_inputs_refused("node-so", **TINY)
    bad_inputs_refused("node-so", state_layout="qv", **TINY)


def test_layout_errors():
    with pytest.raises(ValueError, match="as many velocities/momenta as positions"):
        make("node-so", obs_dim=5, dt=0.1)
    with pytest.raises(ValueError, match="mass matrix only on \\[q, p\\] data"):
        make("node-so", obs_dim=4, dt=0.1, state_layout="qv").mass_matrix(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"positions have shape \(1, 3\), expected \(B, 2\)"):
        make("node-so", obs_dim=4, dt=0.1).mass_matrix(torch.zeros(1, 3))
