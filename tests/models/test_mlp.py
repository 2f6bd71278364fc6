"""`mlp`: the MBRL baseline that predicts the normalised state change."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make, make_config

TINY = {"hidden": 16, "layers": 2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("train_mode", ["single", "recurrent"])
def test_rollout_shapes(shapes_ok, dtype, train_mode):
    shapes_ok("mlp", dtype, train_mode=train_mode, **TINY)


@pytest.mark.parametrize("train_mode", ["single", "recurrent"])
def test_fits_spring_chain_ten_times_better_than_no_change(make_windows, fit_model, train_mode):
    windows = make_windows().float()
    torch.manual_seed(0)
    model = make("mlp", **windows.dims(actions=False), hidden=64, train_mode=train_mode)
    result = fit_model(model, windows, steps=300, lr=3e-3)
    assert result.final < result.no_change / 10, result


def test_learns_the_action_as_an_input(make_windows, fit_model):
    windows = make_windows(actions="random", force_scale=50.0).float()
    losses = []
    for sees_action in (True, False):
        torch.manual_seed(0)
        model = make("mlp", **windows.dims(actions=sees_action), hidden=32)
        losses.append(fit_model(model, windows, steps=200, lr=5e-3).final)
    assert losses[0] < losses[1] / 2, losses


def test_defaults_are_the_mbrl_ones():
    config = make_config("mlp", obs_dim=4, dt=0.1)
    assert (config.activation, config.train_mode) == ("silu", "single")


def test_step_is_the_documented_formula():
    torch.manual_seed(0)
    model = make("mlp", obs_dim=4, dt=0.1, action_dim=2, **TINY).double()
    states = torch.randn(8, 3, 4, dtype=torch.float64) * 3 + 1
    model.fit_normalization(states, torch.randn(8, 2, 2, dtype=torch.float64) * 2)
    z, u = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    change = model.delta_norm.inverse(model.net(model.state_norm(z), model.action_norm(u)))
    # The step runs the network with the normalisers folded into its weights: the same
    # function to rounding, in float64.
    torch.testing.assert_close(model.step(z, u), z + change, rtol=1e-12, atol=1e-12)
    actions = torch.randn(5, 4, 2, dtype=torch.float64)
    by_steps = [z]
    for t in range(4):
        by_steps.append(model.step(by_steps[-1], actions[:, t]))
    torch.testing.assert_close(model.rollout(z, actions), torch.stack(by_steps, 1))


def test_integrator_fields_are_ignored():
    """No ODE: the integrator settings change nothing, in either mode."""
    z, u = torch.randn(3, 5), torch.randn(3, 1)
    outputs = []
    for config in ({}, {"integrator": "euler", "test_integrator": "rk4", "substeps": 7}):
        torch.manual_seed(0)
        model = make("mlp", obs_dim=5, q_dim=2, action_dim=1, dt=0.1, **TINY, **config)
        outputs += [model.train().step(z, u), model.eval().step(z, u)]
    for output in outputs[1:]:
        torch.testing.assert_close(output, outputs[0], rtol=0, atol=0)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = make("mlp", obs_dim=4, dt=0.1, action_dim=2, **TINY)
    model.training_loss(torch.randn(4, 3, 4), torch.randn(4, 2, 2)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_bad_inputs_refused(bad_inputs_refused):
    bad_inputs_refused("mlp", **TINY)
