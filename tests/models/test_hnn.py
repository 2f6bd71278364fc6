"""`hnn`: the learned Hamiltonian in its three forms, forcing, dissipation and [q, v] data."""

from __future__ import annotations

import dataclasses
import io
import math

import pytest
import safetensors.torch
import torch
from torch import nn

from physprior.integrators import get_integrator
from physprior.models import make, model_class
from physprior.models._hamiltonian import HamiltonianField

TINY = {"hidden": 16, "layers": 2}
F64 = torch.float64


def _perturb(module: nn.Module, scale: float = 0.3, seed: int = 1) -> None:
    """Random weights everywhere, including the zero-initialised last layers (mass, damping)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(scale * noise)


def _fitted(form: str = "general", *, action_dim: int = 0, layout: str = "qp", **config):
    """A tiny float64 model with normalisers far from the identity and random weights."""
    torch.manual_seed(0)
    model = make(
        "hnn",
        obs_dim=6,
        action_dim=action_dim,
        state_layout=layout,
        dt=0.1,
        form=form,
        **TINY,
        **config,
    ).double()
    scale = torch.tensor([1.0, 5.0, 0.2, 3.0, 0.5, 2.0], dtype=F64)
    states = torch.cumsum(torch.randn(16, 4, 6, dtype=F64), 1) * scale + 1
    actions = torch.randn(16, 3, action_dim, dtype=F64) * 4 - 1
    model.fit_normalization(states, actions)
    _perturb(model)
    return model


@pytest.fixture
def one_thread():
    """Long loops of tiny tensor operations: a second thread only adds hand-over latency."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _states(batch: int = 5, seed: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scale = torch.tensor([1.0, 5.0, 0.2, 3.0, 0.5, 2.0], dtype=F64)
    return torch.randn(batch, 6, generator=generator, dtype=F64) * scale + 1


# ---------------------------------------------------------------------------- shapes and errors
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "config",
    [
        {"form": "general"},
        {"form": "separable", "integrator": "leapfrog", "substeps": 2},
        {"form": "separable", "integrator": "rk4", "test_integrator": "symplectic_euler"},
        {"form": "mechanical", "dissipation": True},
        {"form": "mechanical", "state_layout": "qv"},
    ],
    ids=["general", "separable-leapfrog", "separable-rk4-se", "mechanical-damped", "qv"],
)
def test_rollout_shapes(shapes_ok, dtype, config):
    shapes_ok("hnn", dtype, **TINY, **config)


def test_bad_inputs_refused(bad_inputs_refused):
    bad_inputs_refused("hnn", **TINY)


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"form": "general", "integrator": "leapfrog"}, "integrator 'leapfrog' needs form="),
        (
            {"form": "mechanical", "test_integrator": "symplectic_euler"},
            "integrator 'symplectic_euler' needs form='separable'",
        ),
        (
            {"form": "mechanical", "state_layout": "qv", "training": "derivative"},
            r"training='derivative' needs \[q, p\] data",
        ),
        ({"form": "lagrangian"}, "form must be one of"),
        ({"training": "adjoint"}, "training must be 'trajectory' or 'derivative'"),
        ({"activation": "relu"}, "hnn needs a smooth activation"),
        ({"obs_dim": 5, "q_dim": 2}, "hnn needs as many momenta as positions"),
        ({"form": "mechanical", "mass_eps": 0.0}, "mass_eps must be positive"),
    ],
)
def test_bad_config_refused(config, pattern):
    config = {"obs_dim": 4, "dt": 0.1, **config}
    with pytest.raises(ValueError, match=pattern) as caught:
        make("hnn", **config)
    assert "\n" not in str(caught.value)


def test_qv_only_methods_refused():
    with pytest.raises(ValueError, match=r"time_derivative is defined for \[q, p\] states"):
        _fitted("mechanical", layout="qv").time_derivative(_states())
    with pytest.raises(ValueError, match="mass_matrix needs form='mechanical'"):
        _fitted("separable").mass_matrix(_states()[:, :3])
    with pytest.raises(ValueError, match=r"duration has shape \(2,\), expected"):
        _fitted().flow(_states(), duration=torch.ones(2, dtype=F64))


# ---------------------------------------------------------------------------- structure
@pytest.mark.parametrize("form", ["general", "separable", "mechanical"])
def test_field_is_the_gradient_of_the_energy(form):
    """dq/dt = dH/dp and dp/dt = -dH/dq, H differentiated in the original coordinates."""
    model = _fitted(form)
    z = _states().requires_grad_(False)
    field = model.time_derivative(z)
    eps = 1e-6
    grad = torch.empty_like(z)
    for i in range(6):
        step = torch.zeros(6, dtype=F64)
        step[i] = eps
        grad[:, i] = (model.energy(z + step) - model.energy(z - step)) / (2 * eps)
    torch.testing.assert_close(field[:, :3], grad[:, 3:], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(field[:, 3:], -grad[:, :3], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu", "elu"])
@pytest.mark.parametrize("form", ["general", "separable", "mechanical"])
def test_closed_form_gradient_matches_autograd(form, activation):
    """The written-out backpropagation of every energy is autograd's arithmetic."""
    model = _fitted(form, activation=activation)
    energy, scales, z = model.system.energy, model.system.scales, _states()
    q, p = z[:, :3], z[:, 3:]
    closed = energy.gradient(q, p, scales)
    q, p = q.clone().requires_grad_(True), p.clone().requires_grad_(True)
    auto = torch.autograd.grad(energy(q, p, scales).sum(), (q, p))
    for a, b in zip(closed, auto, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_mass_matrix_is_spd_and_gives_the_kinetic_energy():
    model = _fitted("mechanical")
    z = _states(8)
    q, p = z[:, :3], z[:, 3:]
    mass = model.mass_matrix(q)
    torch.testing.assert_close(mass, mass.mT, rtol=0, atol=1e-12)
    assert torch.linalg.eigvalsh(mass).min() > 0
    kinetic = model.energy(z) - model.energy(torch.cat((q, torch.zeros_like(p)), -1))
    expected = 0.5 * (p * torch.linalg.solve(mass, p.unsqueeze(-1)).squeeze(-1)).sum(-1)
    torch.testing.assert_close(kinetic, expected, rtol=1e-10, atol=1e-12)


def test_qv_conversion_round_trips():
    model = _fitted("mechanical", layout="qv")
    system, z = model.system, _states()
    q, v = z[:, :3], z[:, 3:]
    p = system.momentum(q, v)
    torch.testing.assert_close(system.velocity(q, p), v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(system.momentum(q, system.velocity(q, p)), p, rtol=1e-12, atol=1e-12)
    # The velocity is the Hamiltonian's dq/dt = dH/dp at p = M(q) v.
    torch.testing.assert_close(system.rates(q, p, None)[0], v, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(system.from_canonical(system.to_canonical(z, "qv"), "qv"), z)


def test_qv_rollout_is_the_canonical_rollout_in_velocities():
    """On [q, v] data a step is p = M v, the [q, p] step, then v = M^-1 p: the same flow."""
    model = _fitted("mechanical", layout="qv", action_dim=2, substeps=2)
    canonical = model_class("hnn")(dataclasses.replace(model.config, state_layout="qp")).double()
    canonical.load_state_dict(model.state_dict())
    z, actions = _states(4), torch.randn(4, 5, 2, dtype=F64)
    system = model.system
    expected = canonical.rollout(system.to_canonical(z, "qv"), actions)
    torch.testing.assert_close(model.rollout(z, actions), system.from_canonical(expected, "qv"))
    torch.testing.assert_close(model.energy(z), canonical.energy(system.to_canonical(z, "qv")))


def test_forcing_enters_only_the_momentum_rate():
    model = _fitted("general", action_dim=2)
    z = _states()
    u = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    free = model.time_derivative(z, torch.zeros_like(u))
    forced = model.time_derivative(z, u)
    doubled = model.time_derivative(z, 2 * u)
    assert torch.equal(forced[:, :3], free[:, :3])
    assert (forced[:, 3:] - free[:, 3:]).abs().min() > 0
    # Linear in u, and a zero action is no force whatever the action normaliser's mean.
    torch.testing.assert_close(doubled - free, 2 * (forced - free), rtol=1e-10, atol=1e-12)
    q, p = z[:, :3], z[:, 3:]
    torch.testing.assert_close(free, torch.cat(model.system.rates(q, p, None), -1))


@pytest.mark.parametrize("form", ["separable", "mechanical"])
def test_dissipation_drains_the_learned_energy(form):
    model = _fitted(form, dissipation=True, substeps=2).eval()
    z = _states(6)
    q, p = z[:, :3], z[:, 3:]
    # Power balance: dH/dt = -(dq/dt)^T D (dq/dt) <= 0 exactly, without control.
    dh_dq, dh_dp = model.system.energy.gradient(q, p, model.system.scales)
    dq, dp = model.system.rates(q, p, None)
    damping = model.system.dissipation.damping_matrix(q, model.system.scales)
    power = (dh_dq * dq).sum(-1) + (dh_dp * dp).sum(-1)
    torch.testing.assert_close(power, -torch.einsum("bi,bij,bj->b", dq, damping, dq))
    assert (power < 0).all()
    assert torch.linalg.eigvalsh(damping).min() >= 0
    if form == "mechanical":
        return  # its autograd field is slow; the rollout below is the same for every form
    # Along a rollout the energy falls, step after step.
    with torch.no_grad():
        states = model.rollout(z, steps=50)
        energy = model.energy(states.reshape(-1, 6)).reshape(6, 51)
    assert (energy.diff(dim=1) < 0).all()
    assert (energy[:, -1] < energy[:, 0] - 0.01 * energy[:, 0].abs()).all()


def test_separable_leapfrog_energy_error_is_bounded_and_second_order(one_thread):
    """10,000 leapfrog steps of a separable HNN trained on a harmonic oscillator.

    Its own H has a bounded error (no drift: the last half is no worse than the first tenth),
    and the error falls ~4x when the step is halved (second order). Both step sizes run in one
    batch with per-sample steps, straight through the integrator's trajectory loop: the same
    arithmetic as `rollout` (see `test_train_and_eval_modes_use_their_own_integrators`)
    without its per-step overhead.
    """
    dt = 0.1
    generator = torch.Generator().manual_seed(0)
    radius = 0.5 + 0.5 * torch.rand(256, 1, generator=generator, dtype=F64)
    phase = 2 * math.pi * torch.rand(256, 1, generator=generator, dtype=F64)
    t = torch.tensor([0.0, dt], dtype=F64)
    states = torch.stack([radius * torch.cos(phase + t), -radius * torch.sin(phase + t)], dim=-1)
    actions = states.new_zeros(256, 1, 0)
    torch.manual_seed(0)
    model = make(
        "hnn",
        obs_dim=2,
        dt=dt,
        form="separable",
        training="derivative",
        integrator="leapfrog",
        hidden=16,
        layers=1,
    ).double()
    model.fit_normalization(states, actions)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        model.training_loss(states, actions).backward()
        optimizer.step()
    model.eval()
    assert model.active_integrator.name == "leapfrog"
    starts = torch.tensor([[0.8, 0.0], [0.0, 0.6], [0.5, 0.5], [-0.3, 0.7]], dtype=F64)
    steps = torch.tensor([[dt]] * 4 + [[dt / 2]] * 4, dtype=F64)
    field = HamiltonianField(model.system, None)
    with torch.no_grad():
        states = model.active_integrator.trajectory(field, starts.repeat(2, 1), steps, 10_000)
        energy = model.energy(states.reshape(-1, 2)).reshape(8, -1)
    error = (energy - energy[:, :1]).abs()
    early, late = error[:, :1000].amax(dim=1), error[:, 5000:].amax(dim=1)
    assert (late <= 1.5 * early).all(), (early, late)
    ratio = error[:4].amax(dim=1) / error[4:].amax(dim=1)
    assert ((ratio > 3) & (ratio < 5)).all(), ratio
    assert error.amax() < 1e-2  # and small: the trained H is smooth on these orbits


def test_train_and_eval_modes_use_their_own_integrators():
    model = _fitted("separable", integrator="rk4", test_integrator="leapfrog", substeps=2)
    z = _states()
    for mode, name in ((model.train, "rk4"), (model.eval, "leapfrog")):
        mode()
        integrator = get_integrator(name)
        field = HamiltonianField(model.system, None)
        target = field if integrator.requires_split else field.vector
        expected = integrator.advance(target, z, model.dt / 2, 2)
        torch.testing.assert_close(model.step(z), expected, rtol=0, atol=0)


# ---------------------------------------------------------------------------- gradients and io
def test_gradients_reach_parameters_and_initial_states_in_any_mode(make_windows):
    windows = make_windows(8, 3, n_masses=3, actions="random")
    torch.manual_seed(0)
    model = make("hnn", **windows.dims(), form="mechanical", dissipation=True, **TINY).double()
    model.fit_normalization(windows.states, windows.actions)
    _perturb(model)
    model.training_loss(windows.states, windows.actions).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # Initial-state optimisation differentiates the rollout loss in evaluation mode.
    model.eval()
    z0 = windows.states[:, 0].clone().requires_grad_(True)
    loss = model.training_loss(windows.states, windows.actions, initial_states=z0)
    (grad,) = torch.autograd.grad(loss, z0)
    assert grad.abs().sum() > 0
    # Stepping under no_grad (an env) still differentiates H internally, returns no graph.
    with torch.no_grad():
        assert not model.rollout(windows.states[:, 0], windows.actions).requires_grad


def test_state_dict_round_trips_through_safetensors():
    model = _fitted("mechanical", action_dim=2, dissipation=True)
    blob = safetensors.torch.save(model.state_dict())
    clone = model_class("hnn")(dataclasses.replace(model.config)).double()
    clone.load_state_dict(safetensors.torch.load(io.BytesIO(blob).read()))
    z, actions = _states(), torch.randn(5, 3, 2, dtype=F64)
    assert torch.equal(clone.rollout(z, actions), model.rollout(z, actions))


# ---------------------------------------------------------------------------- learning
@pytest.mark.parametrize(
    ("config", "layout"),
    [
        ({"form": "general", "hidden": 64}, "qp"),
        ({"form": "separable", "integrator": "leapfrog", "hidden": 64}, "qp"),
        ({"form": "mechanical", "hidden": 32}, "qp"),
        ({"form": "mechanical", "hidden": 32}, "qv"),
    ],
    ids=["general-rk4", "separable-leapfrog", "mechanical-rk4", "mechanical-qv"],
)
def test_fits_spring_chain_ten_times_better_than_no_change(make_windows, fit_model, config, layout):
    windows = make_windows(layout=layout).float()
    torch.manual_seed(0)
    model = make("hnn", **windows.dims(actions=False), train_mode="single", **config)
    result = fit_model(model, windows, steps=100, lr=1e-2)
    assert result.final < result.no_change / 10, result


def test_derivative_training_reduces_its_loss(make_windows, fit_model):
    windows = make_windows().float()
    torch.manual_seed(0)
    model = make(
        "hnn", **windows.dims(actions=False), form="separable", training="derivative", hidden=64
    )
    result = fit_model(model, windows, steps=100, lr=1e-2)
    assert result.final < result.initial / 10, result
    # The derivative fit also predicts states: one step beats "no change" by far.
    single = dataclasses.replace(model.config, training="trajectory", train_mode="single")
    stepper = model_class("hnn")(single)
    stepper.load_state_dict(model.state_dict())
    with torch.no_grad():
        loss = stepper.training_loss(windows.states.float(), windows.actions[..., :0].float())
    assert loss < result.no_change / 10, (loss, result)


def test_learns_the_action_as_a_generalised_force(make_windows, fit_model):
    """Under strong random forces a model with the forcing term fits far better than one blind."""
    windows = make_windows(actions="random", force_scale=50.0).float()
    losses = []
    for sees_action in (True, False):
        torch.manual_seed(0)
        model = make(
            "hnn",
            **windows.dims(actions=sees_action),
            form="separable",
            integrator="leapfrog",
            train_mode="single",
            hidden=32,
        )
        losses.append(fit_model(model, windows, steps=100, lr=1e-2).final)
    assert losses[0] < losses[1] / 2, losses


@pytest.mark.parametrize("form", ["general", "separable"])
def test_other_forms_read_velocities_through_their_own_mass_matrix(form):
    # decon-hnn's NonseparableHNN: a learned M(q) maps v to p and back; the dynamics come
    # from H alone, so a round trip through the conversion is exact.
    torch.manual_seed(0)
    model = make("hnn", obs_dim=4, dt=0.1, hidden=8, form=form, state_layout="qv").double()
    model.fit_normalization(torch.randn(6, 3, 4, dtype=torch.float64), None)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, std=0.3)
    q, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    system = model.system
    assert system.conversion is not None
    torch.testing.assert_close(system.velocity(q, system.momentum(q, v)), v)
    states = model.rollout(torch.cat((q, v), -1), steps=3)
    assert states.shape == (5, 4, 4) and torch.isfinite(states).all()
