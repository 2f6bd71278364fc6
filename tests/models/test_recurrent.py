"""`rnn` and `lstm`: the SRNN paper's recurrent baselines."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make

TINY = {"hidden": 16}
NAMES = ["rnn", "lstm"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_rollout_shapes(shapes_ok, name, dtype):
    shapes_ok(name, dtype, **TINY)


@pytest.mark.parametrize("name", NAMES)
def test_fits_spring_chain_ten_times_better_than_no_change(make_windows, fit_model, name):
    windows = make_windows().float()
    torch.manual_seed(0)
    model = make(name, **windows.dims(actions=False), hidden=64)
    result = fit_model(model, windows, steps=300, lr=3e-3)
    assert result.final < result.no_change / 10, result


@pytest.mark.parametrize("name", NAMES)
def test_learns_the_action_as_an_input(make_windows, fit_model, name):
    windows = make_windows(actions="random", force_scale=50.0).float()
    losses = []
    for sees_action in (True, False):
        torch.manual_seed(0)
        model = make(name, **windows.dims(actions=sees_action), hidden=32)
        losses.append(fit_model(model, windows, steps=200, lr=5e-3).final)
    assert losses[0] < losses[1] / 1.5, losses


def _model(name: str, **config):
    torch.manual_seed(0)
    model = make(name, obs_dim=4, action_dim=2, dt=0.1, **{**TINY, **config}).double()
    states = torch.randn(8, 3, 4, dtype=torch.float64) * 3 + 1
    model.fit_normalization(states, torch.randn(8, 2, 2, dtype=torch.float64) * 2)
    return model


@pytest.mark.parametrize("name", NAMES)
def test_rollout_carries_memory_and_feeds_predictions_back(name):
    model = _model(name)
    z0 = torch.randn(3, 4, dtype=torch.float64)
    actions = torch.randn(3, 5, 2, dtype=torch.float64)
    states = model.rollout(z0, actions)
    z, memory = z0, None
    for t in range(5):
        z, memory = model.step_with_memory(z, actions[:, t], memory)
        torch.testing.assert_close(states[:, t + 1], z, rtol=0, atol=0)
    # Memory matters: restarting it at every step (what `step` does) gives another rollout.
    z = z0
    for t in range(5):
        z = model.step(z, actions[:, t])
    assert (z - states[:, -1]).abs().max() > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_memory_has_the_documented_form(name):
    model = _model(name)
    cell = model.cell
    z, u = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    x = torch.cat((model.state_norm(z), model.action_norm(u)), -1)
    z_next, memory = model.step_with_memory(z, u)
    hidden = cell(x)[0] if name == "lstm" else cell(x)
    if name == "lstm":
        assert isinstance(memory, tuple) and len(memory) == 2
        assert memory[0].shape == memory[1].shape == (3, 16)
    else:
        assert memory.shape == (3, 16)
    expected = z + model.delta_norm.inverse(model.readout(hidden))
    torch.testing.assert_close(z_next, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_single_mode_starts_every_pair_from_zero_memory(name):
    model = _model(name, train_mode="single")
    states = torch.randn(4, 4, 4, dtype=torch.float64)
    actions = torch.randn(4, 3, 2, dtype=torch.float64)
    with torch.no_grad():
        predicted = torch.stack([model.step(states[:, t], actions[:, t]) for t in range(3)], 1)
        expected = ((predicted - states[:, 1:]) / model.state_norm.std).square().mean()
    with torch.no_grad():
        torch.testing.assert_close(model.training_loss(states, actions), expected)
        recurrent = _model(name, train_mode="recurrent").training_loss(states, actions)
    assert abs(float(recurrent - expected)) > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    model = _model(name)
    model.training_loss(torch.randn(4, 3, 4), torch.randn(4, 2, 2)).backward()
    for param_name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, param_name


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_refused(bad_inputs_refused, name):
    bad_inputs_refused(name, **TINY)


def test_the_authors_readouts_predict_from_raw_inputs():
    # The SRNN authors' RNN: raw [z, u] in, the next state out of a Linear layer.
    rnn = _model("rnn", readout="state")
    z, u = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    hidden = rnn.cell(torch.cat((z, u), -1))
    torch.testing.assert_close(rnn.step(z, u), rnn.readout(hidden), rtol=0, atol=0)
    # Their LSTM: the hidden state itself is the prediction, so it is bounded by 1.
    lstm = _model("lstm", readout="hidden", hidden=4)
    big = 10 * torch.ones(3, 4, dtype=torch.float64)
    predicted = lstm.rollout(big, torch.zeros(3, 6, 2, dtype=torch.float64))
    assert predicted[:, 1:].abs().max() < 1
    torch.testing.assert_close(predicted[:, 1], lstm.cell(torch.cat((big, 0 * u), -1))[0])


def test_hidden_readout_needs_the_state_size():
    with pytest.raises(ValueError, match=r"hidden must equal obs_dim=4, got hidden=16"):
        make("lstm", obs_dim=4, dt=0.1, hidden=16, readout="hidden")
    with pytest.raises(ValueError, match="readout must be one of"):
        make("rnn", obs_dim=4, dt=0.1, readout="sideways")
